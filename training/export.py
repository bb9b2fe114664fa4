"""Turn training checkpoints into one compact weights file for models/weights/.

    python -m training.export --weights RUN/best.pt [RUN2/best.pt ...] --out models/weights/emotion_X.pt
    python -m training.export --backbone models/weights/generated/facenet_casia.pt \
        --out .cache/devinit/facenet_body_fp16.pt

One checkpoint gives a single network; several give an `ensemble` (mean of probabilities) in one
file. Floating-point tensors are stored as fp16 (halving the size); loaders cast back to fp32.
`--backbone` instead writes a pretrained state dict in fp16 without its identity head, for a GPU
machine that must receive facenet_fer's starting weights in under 64 MiB (45 MB instead of 94).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch


def _cast(sd: dict, dtype: torch.dtype) -> dict:
    """Floating-point tensors in `dtype`, the others as they are."""
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}


def _save(obj: object, out: str | Path) -> str:
    """torch.save `obj` to `out` (its folder made) and return the file's sha256."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def export(
    weights: list[str | Path], out: str | Path, dtype: torch.dtype = torch.float16, meta: dict | None = None
) -> str:
    """Write the compact file and return its sha256."""
    cks = [torch.load(p, map_location="cpu", weights_only=True) for p in weights]
    sizes = {ck.get("input_size", 48) for ck in cks}
    if len(sizes) != 1:
        raise ValueError(f"members differ in input size: {sizes}")

    if len(cks) == 1:
        ck = cks[0]
        arch, kwargs, sd = ck["arch"], ck.get("arch_kwargs", {}), _cast(ck["state_dict"], dtype)
        members_meta = [ck.get("meta", {})]
    else:
        arch = "ensemble"
        kwargs = {"members": [{"arch": ck["arch"], "arch_kwargs": ck.get("arch_kwargs", {})} for ck in cks]}
        sd = {f"members.{i}.{k}": v for i, ck in enumerate(cks) for k, v in _cast(ck["state_dict"], dtype).items()}
        members_meta = [ck.get("meta", {}) for ck in cks]
    payload = {
        "format": "classlens-emotion-v1",
        "arch": arch,
        "arch_kwargs": kwargs,
        "input_size": sizes.pop(),
        "classes": cks[0].get("classes"),
        "state_dict": sd,
        "meta": {**(meta or {}), "members": members_meta, "dtype": str(dtype).removeprefix("torch.")},
    }
    return _save(payload, out)


def export_backbone(src: str | Path, out: str | Path, dtype: torch.dtype = torch.float16) -> str:
    """Write `src`'s state dict (a plain one, as models/weights/generated/facenet_casia.pt) in
    `dtype` without the identity head; returns its sha256. `init_backbone` reads either file."""
    from models.emotion_nets import FACENET_IDENTITY_HEAD

    sd = torch.load(src, map_location="cpu", weights_only=True)
    body = {k: v for k, v in sd.items() if k.split(".", 1)[0] not in FACENET_IDENTITY_HEAD}
    return _save(_cast(body, dtype), out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", nargs="+", help="training checkpoints (best.pt)")
    src.add_argument("--backbone", help="a pretrained state dict to shrink (see export_backbone)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    args = ap.parse_args(argv)
    if args.backbone:
        sha = export_backbone(args.backbone, args.out, getattr(torch, args.dtype))
    else:
        sha = export(args.weights, args.out, getattr(torch, args.dtype))
    print(f"{args.out} {Path(args.out).stat().st_size} bytes sha256 {sha}")


if __name__ == "__main__":
    main()
