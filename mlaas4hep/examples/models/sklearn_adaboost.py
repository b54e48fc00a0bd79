# AdaBoost on shallow trees: fitted on the training split in memory.
from sklearn.ensemble import AdaBoostClassifier
from sklearn.tree import DecisionTreeClassifier


def model():
    return AdaBoostClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=50,
                              random_state=0)
