"""ClassLens's own FER-2013 emotion models, trained by training/ (see models/weights/MODEL_CARD_emotion.md).

One file, emotion_classlens_fer.pt, holds an ensemble of two compact ResNets (fer_resnet_s +
fer_resnet_m, mean of probabilities): `classlens_fer` runs both, `classlens_fer_fast` runs only the
first member (fer_resnet_s), about a third of the cost for ~1 point less accuracy. The file holds
architecture names (`models.emotion_nets`), their arguments and fp16 weights, cast to fp32 here.
Input: 48x48 grayscale, scaled to [0, 1] here and normalised inside the network.
"""

from __future__ import annotations

import numpy as np
import torch

from models.emotion import register_emotion_model
from models.emotion_nets import create_emotion_net
from models.weights_io import checked_path

WEIGHTS_FILE = "emotion_classlens_fer.pt"
WEIGHTS_SHA256 = "b489ecba2666104c82b5ff1bf755e4a2806696bb11410b59f5ef8aebb2d3d806"


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


def load_weights_file(path: str, name: str, member: int | None = None) -> NetClassifier:
    """A classifier from a `training.export` weights file.

    Args:
        member: for an ensemble file, load only this member (None: the whole file).
    """
    ck = torch.load(path, map_location="cpu", weights_only=True)
    arch, kwargs, state = ck["arch"], ck.get("arch_kwargs", {}), ck["state_dict"]
    if member is not None:
        if arch != "ensemble":
            raise ValueError(f"{path} holds one {arch}, not an ensemble")
        arch, kwargs = kwargs["members"][member]["arch"], kwargs["members"][member].get("arch_kwargs", {})
        prefix = f"members.{member}."
        state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    net = create_emotion_net(arch, **kwargs)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return NetClassifier(net, name, int(ck.get("input_size", 48)))


@register_emotion_model("classlens_fer")
def load_classlens_fer() -> NetClassifier:
    return load_weights_file(str(checked_path(WEIGHTS_FILE, WEIGHTS_SHA256)), "classlens_fer")


@register_emotion_model("classlens_fer_fast")
def load_classlens_fer_fast() -> NetClassifier:
    return load_weights_file(str(checked_path(WEIGHTS_FILE, WEIGHTS_SHA256)), "classlens_fer_fast", member=0)
