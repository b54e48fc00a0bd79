# A PyTorch MLP for regression: one output value per event, trained with MSELoss.
from torch import nn


def model(idim):
    return nn.Sequential(nn.Linear(idim, 64), nn.ReLU(), nn.Linear(64, 1))
