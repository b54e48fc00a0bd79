# A PyTorch MLP that also reads the mask: a forward(x, mask) with two arguments is
# given (X, mask), where mask is 1 for a real value and 0 for jagged padding (X holds 0
# there). Setting wants_mask = True on the module says the same explicitly.
import torch
from torch import nn


class MaskedMLP(nn.Module):
    wants_mask = True

    def __init__(self, idim):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(2 * idim, 128), nn.ReLU(), nn.Dropout(0.2),
                                    nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x, mask):
        return self.layers(torch.cat([x, mask], dim=1))


def model(idim):
    return MaskedMLP(idim)
