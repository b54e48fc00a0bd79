# Gradient-boosted trees (histogram-based): fitted on the training split in memory.
from sklearn.ensemble import HistGradientBoostingClassifier


def model():
    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=0)
