# Random forest: fitted on the training split in memory.
from sklearn.ensemble import RandomForestClassifier


def model():
    return RandomForestClassifier(n_estimators=100, max_depth=10, n_jobs=-1, random_state=0)
