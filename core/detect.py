"""Face detection: one adapter over facenet-pytorch's MTCNN (weights ship inside its wheel).

The adapter hides MTCNN's quirks (None when no face, object arrays under numpy 2) and returns
`FaceObservation`s with boxes and 5 landmarks in full-resolution pixel coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np
import torch

from core.faces import FaceObservation

# MTCNN's first stage (P-Net) scans 12x12 windows: smaller faces cannot be found at any scale.
_PNET_MIN = 12


class FaceDetector(Protocol):
    def detect(self, rgb: np.ndarray, frame_index: int = 0, t: float = 0.0) -> list[FaceObservation]:
        """Faces in one (H, W, 3) uint8 RGB frame, as observations without track ids."""
        ...


class MTCNNDetector:
    """facenet-pytorch MTCNN tuned for classrooms (small faces at the back are kept).

    Args:
        min_face: smallest face side, in pixels of the original frame, to look for.
        max_side: frames whose longer side exceeds this are downscaled before detection; the
            scale never drops a `min_face` face below what MTCNN can see.
        threshold: minimum final score of a kept face.
    """

    def __init__(self, min_face: int = 16, max_side: int = 1280, threshold: float = 0.9) -> None:
        from facenet_pytorch import MTCNN  # heavy import, done once

        self.min_face = int(min_face)
        self.max_side = int(max_side)
        self.threshold = float(threshold)
        self._mtcnn_by_min: dict[int, object] = {}
        self._MTCNN = MTCNN

    def _model(self, min_size: int) -> object:
        if min_size not in self._mtcnn_by_min:
            self._mtcnn_by_min[min_size] = self._MTCNN(
                keep_all=True,
                min_face_size=min_size,
                thresholds=[0.6, 0.7, 0.7],
                post_process=False,
                select_largest=False,
                device="cpu",
            )
        return self._mtcnn_by_min[min_size]

    def scale_for(self, height: int, width: int) -> float:
        """Downscale factor applied before detection (1.0 = full resolution)."""
        long_side = max(height, width)
        scale = 1.0 if self.max_side <= 0 or long_side <= self.max_side else self.max_side / long_side
        return min(1.0, max(scale, _PNET_MIN / max(self.min_face, _PNET_MIN)))

    def detect(self, rgb: np.ndarray, frame_index: int = 0, t: float = 0.0) -> list[FaceObservation]:
        return self.detect_batch([rgb], [frame_index], [t])[0]

    def detect_batch(
        self, frames: Sequence[np.ndarray], indices: Sequence[int], times: Sequence[float]
    ) -> list[list[FaceObservation]]:
        """Detect faces in several frames of the same size in one MTCNN call."""
        if not frames:
            return []
        h, w = frames[0].shape[:2]
        scale = self.scale_for(h, w)
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
        else:
            small = list(frames)
        min_size = max(_PNET_MIN, round(self.min_face * scale))
        mtcnn = self._model(min_size)
        with torch.inference_mode():
            if len(small) == 1:
                boxes, probs, points = mtcnn.detect(small[0], landmarks=True)  # type: ignore[attr-defined]
                boxes, probs, points = [boxes], [probs], [points]
            else:
                boxes, probs, points = mtcnn.detect(np.stack(small), landmarks=True)  # type: ignore[attr-defined]
        out: list[list[FaceObservation]] = []
        for b, p, lm, idx, t in zip(boxes, probs, points, indices, times, strict=True):
            out.append(self._to_observations(b, p, lm, scale, idx, t, w, h))
        return out

    def _to_observations(
        self, boxes: object, probs: object, points: object, scale: float, idx: int, t: float, w: int, h: int
    ) -> list[FaceObservation]:
        if boxes is None or probs is None:
            return []
        b = np.asarray(boxes, dtype=float).reshape(-1, 4) / scale
        p = np.asarray(probs, dtype=float).reshape(-1)
        lm = np.asarray(points, dtype=float).reshape(-1, 5, 2) / scale
        faces = []
        for box, score, marks in zip(b, p, lm, strict=True):
            if not np.isfinite(score) or score < self.threshold:
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            x1, y1 = max(0.0, x1), max(0.0, y1)
            x2, y2 = min(float(w), x2), min(float(h), y2)
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            faces.append(
                FaceObservation(frame_index=idx, t=t, box=(x1, y1, x2, y2), det_score=float(score), landmarks=marks)
            )
        return faces
