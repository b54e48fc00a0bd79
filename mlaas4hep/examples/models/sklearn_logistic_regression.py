# Logistic regression: fitted on the training split in memory.
from sklearn.linear_model import LogisticRegression


def model():
    return LogisticRegression(max_iter=500)
