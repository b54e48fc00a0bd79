# XGBoost for K classes (multi:softprob), trained from the chunk stream.
from xgboost import XGBClassifier


def model():
    return XGBClassifier(n_estimators=100, max_depth=4, learning_rate=0.2, tree_method="hist",
                         early_stopping_rounds=10, random_state=0)
