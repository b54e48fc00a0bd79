# scikit-learn MLP: partial_fit, so it learns from every chunk of the stream.
from sklearn.neural_network import MLPClassifier


def model():
    return MLPClassifier(hidden_layer_sizes=(64, 32), learning_rate_init=1e-3, random_state=0)
