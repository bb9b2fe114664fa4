"""Facial-expression classifiers behind one small interface and a name registry.

Every classifier takes grayscale face crops and returns 7 probabilities in `core.faces.EMOTIONS`
order (FER-2013 label order). The pipeline crops and resizes faces to `input_size`; a trained
model replaces the baseline by registering itself and becoming `DEFAULT_EMOTION_MODEL`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np


class EmotionClassifier(Protocol):
    """Face crops in, emotion probabilities out."""

    name: str
    input_size: int  # crops are square, input_size x input_size pixels

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """Classify faces.

        Args:
            crops: (N, input_size, input_size) uint8 grayscale faces.

        Returns:
            (N, 7) float32 probabilities in `EMOTIONS` order, rows summing to 1.
        """
        ...


_REGISTRY: dict[str, Callable[[], EmotionClassifier]] = {}

DEFAULT_EMOTION_MODEL = "classlens_fer_fast"


def register_emotion_model(name: str) -> Callable[[Callable[[], EmotionClassifier]], Callable[[], EmotionClassifier]]:
    """Decorator: register a zero-argument factory under `name`."""

    def deco(factory: Callable[[], EmotionClassifier]) -> Callable[[], EmotionClassifier]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available_emotion_models() -> list[str]:
    """Names accepted by `load_emotion_model`."""
    _import_builtin_models()
    return sorted(_REGISTRY)


def load_emotion_model(name: str | None = None) -> EmotionClassifier:
    """Build the named classifier (the default one when `name` is None) with its weights loaded."""
    _import_builtin_models()
    key = name or DEFAULT_EMOTION_MODEL
    if key not in _REGISTRY:
        raise KeyError(f"Unknown emotion model {key!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]()


def _import_builtin_models() -> None:
    # Imported for their @register_emotion_model side effect; kept lazy so that importing this
    # module stays cheap.
    from models import classlens_emotion, mini_xception  # noqa: F401
