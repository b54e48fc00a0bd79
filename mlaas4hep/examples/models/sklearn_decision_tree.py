# A single decision tree: fitted on the training split in memory.
from sklearn.tree import DecisionTreeClassifier


def model():
    return DecisionTreeClassifier(max_depth=8, random_state=0)
