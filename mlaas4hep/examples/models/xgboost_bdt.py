# XGBoost boosted decision trees, trained from the chunk stream (external memory) with
# early stopping on the validation split.
from xgboost import XGBClassifier


def model():
    return XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, tree_method="hist",
                         early_stopping_rounds=10, random_state=0)
