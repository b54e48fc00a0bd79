# Logistic regression trained by stochastic gradient descent: partial_fit, so it
# learns from every chunk of the stream (any data size).
from sklearn.linear_model import SGDClassifier


def model():
    return SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)
