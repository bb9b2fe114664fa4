"""Classification metrics over the 7 FER classes: confusion matrix, accuracy, P/R/F1, report, plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.faces import EMOTIONS


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(EMOTIONS)) -> np.ndarray:
    """(K, K) int64 counts; rows = true class, columns = predicted class."""
    return np.bincount(np.asarray(y_true) * n_classes + np.asarray(y_pred), minlength=n_classes**2).reshape(
        n_classes, n_classes
    )


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, macro precision/recall/F1 and per-class figures.

    Macro averages run over the classes present in `y_true` (CK+ has no `neutral`, so its macro
    figures average six classes); a class never predicted has precision 0.

    Returns:
        {"accuracy", "macro_precision", "macro_recall", "macro_f1", "n",
         "per_class": {name: {"precision", "recall", "f1", "support"}}, "confusion_matrix": [[...]]}
    """
    cm = confusion_matrix(y_true, y_pred)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    n = int(cm.sum())
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "n": n,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(EMOTIONS)
        },
        "confusion_matrix": cm.tolist(),
    }


def report_text(metrics: dict) -> str:
    """Per-class table plus accuracy and macro lines, like sklearn's classification_report."""
    lines = [f"{'class':>10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for name, m in metrics["per_class"].items():
        lines.append(f"{name:>10} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f} {m['support']:8d}")
    lines.append(f"{'accuracy':>10} {'':>9} {'':>7} {metrics['accuracy']:6.4f} {metrics['n']:8d}")
    lines.append(
        f"{'macro':>10} {metrics['macro_precision']:9.3f} {metrics['macro_recall']:7.3f} {metrics['macro_f1']:6.3f}"
    )
    return "\n".join(lines)


def plot_confusion_matrix(cm: np.ndarray, path: str | Path, title: str = "") -> None:
    """Row-normalised confusion matrix with counts, saved as an image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                color = "white" if frac[i, j] > 0.5 else "black"
                ax.text(j, i, f"{frac[i, j]:.2f}\n{cm[i, j]}", ha="center", va="center", fontsize=7, color=color)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_curves(history: list[dict], path: str | Path, title: str = "") -> None:
    """Loss and accuracy per epoch (train and validation), saved as an image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], label="train")
    a.plot(ep, [h["val_loss"] for h in history], label="val")
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    a.legend()
    b.plot(ep, [h["train_acc"] for h in history], label="train")
    b.plot(ep, [h["val_acc"] for h in history], label="val")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
