# A PyTorch MLP: one logit per event (the framework applies the sigmoid and
# trains with BCEWithLogitsLoss and Adam unless configure_training() says otherwise).
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, idim):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(idim, 128), nn.ReLU(), nn.Dropout(0.2),
                                    nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        return self.layers(x)

    def configure_training(self):
        "Optional: the loss and optimizer to train with."
        return nn.BCEWithLogitsLoss(), torch.optim.Adam(self.parameters(), lr=1e-3)


def model(idim):
    return MLP(idim)
