# A PyTorch MLP for K classes: K logits per event (CrossEntropyLoss, softmax for scores).
from torch import nn


def model(idim, n_classes):
    return nn.Sequential(nn.Linear(idim, 64), nn.ReLU(), nn.Linear(64, n_classes))
