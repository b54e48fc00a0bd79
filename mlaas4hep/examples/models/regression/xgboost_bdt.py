# XGBoost regression trees, trained from the chunk stream with early stopping.
from xgboost import XGBRegressor


def model():
    return XGBRegressor(n_estimators=200, max_depth=4, learning_rate=0.1, tree_method="hist",
                        early_stopping_rounds=10, random_state=0)
