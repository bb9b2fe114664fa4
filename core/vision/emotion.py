"""Emotion analyser: face crops from frames -> 7 FER-2013 probabilities per face (batched)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from core.faces import FaceObservation
from models.emotion import EmotionClassifier


def face_crops(gray: np.ndarray, faces: list[FaceObservation], size: int, margin: float = 0.1) -> np.ndarray:
    """Square grayscale crops around each face box, resized to (size, size).

    Args:
        gray: (H, W) uint8 frame.
        margin: fraction of the box side added on every side (FER-2013 faces are tight crops).

    Returns:
        (N, size, size) uint8; parts outside the frame are filled by edge replication.
    """
    out = np.empty((len(faces), size, size), dtype=np.uint8)
    h, w = gray.shape
    for i, f in enumerate(faces):
        x1, y1, x2, y2 = f.box
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = max(x2 - x1, y2 - y1) * (0.5 + margin)
        a, b = round(cx - half), round(cx + half)
        c, d = round(cy - half), round(cy + half)
        pad = max(0, -a, -c, b - w, d - h)
        src = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
        crop = src[c + pad : d + pad, a + pad : b + pad]
        out[i] = cv2.resize(
            crop, (size, size), interpolation=cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
        )
    return out


class EmotionAnalyser:
    """Fills `emotion_probs` for every face of a batch of frames with one model call."""

    def __init__(self, model: EmotionClassifier) -> None:
        self.model = model

    def analyse(self, frames: list[tuple[np.ndarray, list[FaceObservation]]]) -> list[list[FaceObservation]]:
        crops = [
            face_crops(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), faces, self.model.input_size)
            for rgb, faces in frames
            if faces
        ]
        if not crops:
            return [faces for _, faces in frames]
        probs = self.model.predict(np.concatenate(crops))
        out, k = [], 0
        for _, faces in frames:
            out.append([replace(f, emotion_probs=probs[k + i]) for i, f in enumerate(faces)])
            k += len(faces)
        return out
