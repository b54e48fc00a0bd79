# Linear regression by SGD: partial_fit on every chunk of the stream.
from sklearn.linear_model import SGDRegressor


def model():
    return SGDRegressor(alpha=1e-4, random_state=0)
