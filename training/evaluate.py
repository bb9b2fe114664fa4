"""Evaluate an emotion model on an image-folder dataset.

    python -m training.evaluate --data DIR [--weights FILE | --model NAME] [--tta none|flip|crops] [--out DIR]

DIR holds `DIR/<class>/*.{jpg,png}` with FER-2013 class names (CK+ names such as `anger`,
`sadness` are mapped; `contempt` is dropped and counted); `--data` may also be a FER-2013 root,
fer2013.csv or a .npz pack with `--split`. Without --weights/--model it evaluates the app's
default emotion model (`models.emotion.DEFAULT_EMOTION_MODEL`). Prints accuracy, macro P/R/F1 and
a per-class report, writes a confusion-matrix image (and metrics JSON) to --out, and prints one
JSON object as its LAST stdout line: accuracy, macro_f1, macro_precision, macro_recall, n, ...
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from core.faces import EMOTIONS
from training.augment import tta_views
from training.datasets import load_source
from training.metrics import classification_metrics, plot_confusion_matrix, report_text

Predictor = Callable[[np.ndarray], np.ndarray]  # (N, S, S) uint8 -> (N, 7) float32 probabilities


def load_checkpoint_net(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Network and metadata of a training checkpoint (best.pt) or a shipped weights file."""
    from models.emotion_nets import load_net_file

    net, ck = load_net_file(str(path))
    return net.to(device).eval(), ck


def checkpoint_predictor(path: str | Path, device: str = "auto", batch_size: int = 512) -> tuple[Predictor, int, str]:
    """Predictor over a weights file; returns (predict, input_size, name)."""
    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    net, ck = load_checkpoint_net(path, dev)
    amp = dev.type == "cuda"

    def predict(images: np.ndarray) -> np.ndarray:
        from training.train import predict_probs

        x = torch.from_numpy(np.ascontiguousarray(images)).to(dev)
        return predict_probs(net, x, batch_size, amp, amp).cpu().numpy()

    return predict, int(ck.get("input_size", 48)), f"{ck['arch']} ({Path(path).name})"


def registry_predictor(name: str | None) -> tuple[Predictor, int, str]:
    """Predictor over a registered app model (None = the app's default)."""
    from models.emotion import DEFAULT_EMOTION_MODEL, load_emotion_model

    model = load_emotion_model(name)
    return model.predict, model.input_size, name or DEFAULT_EMOTION_MODEL


def predict_with_tta(predict: Predictor, images: np.ndarray, tta: str, batch_size: int = 512) -> np.ndarray:
    """Mean probabilities over the TTA views (see `training.augment.tta_views`)."""
    out = []
    for i in range(0, len(images), batch_size):
        views = tta_views(torch.from_numpy(np.ascontiguousarray(images[i : i + batch_size])), tta)
        out.append(np.mean([predict(v.numpy()) for v in views], axis=0))
    return np.concatenate(out) if out else np.zeros((0, len(EMOTIONS)), np.float32)


def evaluate(predict: Predictor, images: np.ndarray, labels: np.ndarray, tta: str = "none") -> dict:
    """Metrics (see `classification_metrics`) of a predictor on labelled faces."""
    probs = predict_with_tta(predict, images, tta)
    return classification_metrics(labels, probs.argmax(axis=1))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="image-folder dataset DIR/<class>/*.jpg|png (or .npz/.csv/.tar)")
    ap.add_argument("--split", default=None, help="split of a FER root, fer2013.csv or .npz pack (e.g. publictest)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--weights", help="weights file from training (best.pt) or models/weights/emotion_*.pt")
    src.add_argument("--model", help="registered app model name (default: the app's default model)")
    ap.add_argument("--tta", default="none", choices=["none", "flip", "crops"], help="test-time augmentation")
    ap.add_argument("--out", help="folder for confusion_matrix.png and metrics.json")
    ap.add_argument("--device", default="auto", help="for --weights: auto, cpu or cuda")
    args = ap.parse_args(argv)

    if args.weights:
        predict, size, name = checkpoint_predictor(args.weights, args.device)
    else:
        predict, size, name = registry_predictor(args.model)
    data = load_source(args.data, args.split, size)
    t0 = time.perf_counter()
    m = evaluate(predict, data.images, data.labels, args.tta)
    seconds = time.perf_counter() - t0
    result = {
        "accuracy": round(m["accuracy"], 5),
        "macro_f1": round(m["macro_f1"], 5),
        "macro_precision": round(m["macro_precision"], 5),
        "macro_recall": round(m["macro_recall"], 5),
        "n": m["n"],
        "model": name,
        "data": str(args.data) + (f":{args.split}" if args.split else ""),
        "tta": args.tta,
        "dropped": data.dropped,
        "per_class_f1": {k: round(v["f1"], 4) for k, v in m["per_class"].items()},
        "confusion_matrix": m["confusion_matrix"],
        "seconds": round(seconds, 2),
    }
    print(
        f"model {name} on {result['data']} (n={m['n']}, tta={args.tta}"
        + (f", dropped {data.dropped}" if data.dropped else "")
        + ")"
    )
    print(report_text(m))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        title = (
            f"{name} on {Path(args.data).name}{':' + args.split if args.split else ''}\n"
            f"acc {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, tta {args.tta}"
        )
        plot_confusion_matrix(np.asarray(m["confusion_matrix"]), out / "confusion_matrix.png", title)
        (out / "metrics.json").write_text(json.dumps({**result, "per_class": m["per_class"]}, indent=2))
        print(f"confusion matrix: {out / 'confusion_matrix.png'}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
