# Multinomial logistic regression by SGD: partial_fit on every chunk, one-vs-rest classes.
from sklearn.linear_model import SGDClassifier


def model():
    return SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)
