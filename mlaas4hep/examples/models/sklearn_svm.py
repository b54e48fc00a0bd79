# Support vector machine with an RBF kernel (probability=True for scores in [0, 1]);
# fitted in memory, and its cost grows fast with the events: use nevts to keep it small.
from sklearn.svm import SVC


def model():
    return SVC(C=1.0, probability=True, random_state=0)
