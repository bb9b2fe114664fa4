"""ClassLens's own FER-2013 emotion models, trained by training/ (see models/weights/MODEL_CARD_emotion.md).

Two single networks, each distilled from two larger teachers (training/configs/kd_*.yaml):
`classlens_fer_fast` (the app's default) is `fer_vgg` at width 32 (1.2 M parameters, ~3 ms per face
on one CPU thread) in emotion_classlens_fer_s.pt; `classlens_fer` is `fer_vgg` at width 64 (4.7 M,
~4x the cost, ~1.5 points more accurate) in emotion_classlens_fer_l.pt. The files hold the
architecture name (`models.emotion_nets`), its arguments and fp16 weights, cast to fp32 here.
Input: 48x48 grayscale, scaled to [0, 1] here and normalised inside the network.
"""

from __future__ import annotations

import numpy as np
import torch

from models.emotion import register_emotion_model
from models.emotion_nets import load_net_file
from models.weights_io import checked_path

FAST_FILE = "emotion_classlens_fer_s.pt"
FAST_SHA256 = "4a8205f1f990598bf7e37b1e3336f5f2bf216e97f532e14d464075967cc10bab"
LARGE_FILE = "emotion_classlens_fer_l.pt"
LARGE_SHA256 = "4a22f05b462671846709288cc7c0276dda3fa32753676ae7bf4e9087341674a3"


class NetClassifier:
    """`EmotionClassifier` over a network from `models.emotion_nets` (channels_last, fp32, no grad)."""

    def __init__(self, net: torch.nn.Module, name: str, input_size: int) -> None:
        self.net = net.eval().to(memory_format=torch.channels_last)
        self.name = name
        self.input_size = input_size

    def predict(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, 7), dtype=np.float32)
        x = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.uint8)).unsqueeze(1).float().div_(255.0)
        with torch.inference_mode():
            probs = torch.softmax(self.net(x.contiguous(memory_format=torch.channels_last)).float(), dim=1)
        return probs.numpy().astype(np.float32)


def load_weights_file(path: str, name: str) -> NetClassifier:
    """A classifier from a `training.export` weights file (one network or an ensemble)."""
    net, ck = load_net_file(path)
    return NetClassifier(net, name, int(ck.get("input_size", 48)))


@register_emotion_model("classlens_fer")
def load_classlens_fer() -> NetClassifier:
    return load_weights_file(str(checked_path(LARGE_FILE, LARGE_SHA256)), "classlens_fer")


@register_emotion_model("classlens_fer_fast")
def load_classlens_fer_fast() -> NetClassifier:
    return load_weights_file(str(checked_path(FAST_FILE, FAST_SHA256)), "classlens_fer_fast")
