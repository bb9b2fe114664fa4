"""Face detection: adapters that return `FaceObservation`s with MTCNN-convention boxes, 5 landmarks
and scores in full-resolution pixel coordinates.

- `MTCNNDetector`: facenet-pytorch's MTCNN (P/R/O-Net weights ship inside its wheel); the
  reference, ~0.6 s per 720p frame on 2 cores with `min_face=16`.
- `YuNetDetector` (default): OpenCV's YuNet (`cv2.FaceDetectorYN`, 0.23 MB ONNX in models/weights)
  finds the faces (~50 ms per 720p frame), then MTCNN's own O-Net refines each one on a 48x48 crop,
  so boxes, landmarks and scores keep MTCNN's conventions (crops for the per-face models, the
  tracker's IoU and the 0.9 score threshold behave as with the reference).

Both hide their model's quirks (None when no face, object arrays under numpy 2).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np
import torch

from core.faces import FaceObservation

DETECTORS = ("yunet", "mtcnn")
YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
# YuNet finds faces down to about 10 px; below that, frames are not downscaled further.
_YUNET_MIN = 10

# MTCNN's first stage (P-Net) scans 12x12 windows: smaller faces cannot be found at any scale.
_PNET_MIN = 12


class FaceDetector(Protocol):
    def detect(self, rgb: np.ndarray, frame_index: int = 0, t: float = 0.0) -> list[FaceObservation]:
        """Faces in one (H, W, 3) uint8 RGB frame, as observations without track ids."""
        ...

    def detect_batch(
        self, frames: Sequence[np.ndarray], indices: Sequence[int], times: Sequence[float]
    ) -> list[list[FaceObservation]]:
        """Faces of several frames of one video."""
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


def _square(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> squares of side max(w, h) about the same centres (MTCNN's `rerec`)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + w / 2 - side / 2
    y1 = boxes[:, 1] + h / 2 - side / 2
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def grow_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """(N, 4) xyxy boxes scaled by `factor` about their centres."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * factor / 2
    return np.concatenate([c - half, c + half], axis=1)


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.7) -> list[int]:
    """MTCNN's final non-maximum suppression: overlap = intersection / smaller area."""
    order = list(np.argsort(-scores))
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        rest = np.array(order, dtype=int)
        if not len(rest):
            break
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1 + 1, 0, None) * np.clip(yy2 - yy1 + 1, 0, None)
        overlap = inter / np.minimum(area[i], area[rest])
        order = [int(j) for j, o in zip(rest, overlap, strict=True) if o <= threshold]
    return keep


class YuNetDetector:
    """YuNet proposals refined by MTCNN's O-Net (see the module docstring).

    Args:
        min_face: smallest face side, in pixels of the original frame, to look for.
        max_side: frames whose longer side exceeds this are downscaled for YuNet; the scale
            never drops a `min_face` face below what YuNet can see. O-Net always works on
            full-resolution crops.
        threshold: minimum final (O-Net) score of a kept face, as for `MTCNNDetector`.
        proposal_threshold: minimum YuNet score of a proposal (low: O-Net decides).
        refine_passes: O-Net passes: YuNet's box squared, then re-centred on the best box so far,
            then a 1.2x looser crop of it; each face keeps its best-scoring pass.
    """

    def __init__(
        self,
        min_face: int = 16,
        max_side: int = 1280,
        threshold: float = 0.9,
        proposal_threshold: float = 0.6,
        refine_passes: int = 3,
    ) -> None:
        from facenet_pytorch import MTCNN

        from models.weights_io import checked_path

        self.min_face = int(min_face)
        self.max_side = int(max_side)
        self.threshold = float(threshold)
        self.proposal_threshold = float(proposal_threshold)
        self.refine_passes = max(1, int(refine_passes))
        self._onnx = str(checked_path(YUNET_FILE, YUNET_SHA256))
        self._yunet: dict[tuple[int, int], cv2.FaceDetectorYN] = {}
        # The app shares one detector between concurrent analyses and the live camera; an OpenCV
        # FaceDetectorYN is not thread-safe (two threads on one instance fail in forwardGraph).
        self._yunet_lock = threading.Lock()
        self._onet = MTCNN(device="cpu").onet.eval()

    def scale_for(self, height: int, width: int) -> float:
        """Downscale factor applied before YuNet (1.0 = full resolution)."""
        long_side = max(height, width)
        scale = 1.0 if self.max_side <= 0 or long_side <= self.max_side else self.max_side / long_side
        return min(1.0, max(scale, _YUNET_MIN / max(self.min_face, _YUNET_MIN)))

    def _model(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        if size not in self._yunet:
            # One instance per input size (a lecture has one); top_k bounds a pathological frame.
            self._yunet[size] = cv2.FaceDetectorYN.create(self._onnx, "", size, self.proposal_threshold, 0.3, 500)
        return self._yunet[size]

    def proposals(self, rgb: np.ndarray) -> np.ndarray:
        """YuNet's boxes in full-resolution pixels, (N, 4) xyxy."""
        h, w = rgb.shape[:2]
        scale = self.scale_for(h, w)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        size = (bgr.shape[1], bgr.shape[0])
        with self._yunet_lock:
            _, found = self._model(size).detect(bgr)
        if found is None or not len(found):
            return np.zeros((0, 4))
        xywh = np.asarray(found[:, :4], dtype=float) / scale
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:4]], axis=1)
        side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        return boxes[side >= 0.75 * self.min_face]

    def refine(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """MTCNN O-Net on square crops around `boxes`: (boxes (N,4), scores (N,), landmarks (N,5,2))."""
        h, w = rgb.shape[:2]
        sq = _square(np.asarray(boxes, dtype=float).reshape(-1, 4))
        crops = np.empty((len(sq), 48, 48, 3), dtype=np.float32)
        ints = np.trunc(sq).astype(int)
        for k, (x1, y1, x2, y2) in enumerate(ints):
            # Same geometry as facenet-pytorch (1-based pad, zero outside the frame).
            side_w, side_h = x2 - x1 + 1, y2 - y1 + 1
            patch = np.zeros((side_h, side_w, 3), dtype=np.uint8)
            sx1, sy1, sx2, sy2 = max(x1, 1), max(y1, 1), min(x2, w), min(y2, h)
            if sx2 > sx1 - 1 and sy2 > sy1 - 1:
                patch[sy1 - y1 : sy2 - y1 + 1, sx1 - x1 : sx2 - x1 + 1] = rgb[sy1 - 1 : sy2, sx1 - 1 : sx2]
            crops[k] = cv2.resize(patch, (48, 48), interpolation=cv2.INTER_AREA)
        with torch.inference_mode():
            x = torch.from_numpy((crops - 127.5) * 0.0078125).permute(0, 3, 1, 2)
            reg, points, prob = (o.numpy() for o in self._onet(x))
        score = prob[:, 1]
        bw, bh = (sq[:, 2] - sq[:, 0] + 1), (sq[:, 3] - sq[:, 1] + 1)
        marks = np.stack(
            [bw[:, None] * points[:, :5] + sq[:, :1] - 1, bh[:, None] * points[:, 5:] + sq[:, 1:2] - 1], axis=2
        )
        out = sq + reg * np.stack([bw, bh, bw, bh], axis=1)
        return out, score, marks

    def detect(self, rgb: np.ndarray, frame_index: int = 0, t: float = 0.0) -> list[FaceObservation]:
        return self.detect_batch([rgb], [frame_index], [t])[0]

    def detect_batch(
        self, frames: Sequence[np.ndarray], indices: Sequence[int], times: Sequence[float]
    ) -> list[list[FaceObservation]]:
        """Faces of each frame (frames may differ in size)."""
        return [self._detect_one(rgb, idx, t) for rgb, idx, t in zip(frames, indices, times, strict=True)]

    def _detect_one(self, rgb: np.ndarray, idx: int, t: float) -> list[FaceObservation]:
        boxes = self.proposals(rgb)
        if not len(boxes):
            return []
        # O-Net's score of a borderline face moves with the crop's framing (0.85 on one pass,
        # 0.98 on the next): keep each face's best pass, with that pass's box and landmarks.
        best_boxes, best_scores, best_marks = self.refine(rgb, boxes)
        for k in range(self.refine_passes - 1):
            # Alternate framings: re-centred on the best box so far, then a looser crop of it.
            boxes, scores, marks = self.refine(rgb, best_boxes if k % 2 == 0 else grow_boxes(best_boxes, 1.2))
            better = scores > best_scores
            best_boxes[better], best_scores[better], best_marks[better] = boxes[better], scores[better], marks[better]
        boxes, scores, marks = best_boxes, best_scores, best_marks
        keep = _nms_min(boxes, scores)
        h, w = rgb.shape[:2]
        faces = []
        for i in keep:
            score = float(scores[i])
            if not np.isfinite(score) or score < self.threshold:
                continue
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            faces.append(
                FaceObservation(frame_index=idx, t=t, box=(x1, y1, x2, y2), det_score=score, landmarks=marks[i])
            )
        return faces


def make_detector(name: str, min_face: int = 16, max_side: int = 1280, threshold: float = 0.9) -> FaceDetector:
    """The detector registered under `name` (one of `DETECTORS`)."""
    if name == "yunet":
        return YuNetDetector(min_face, max_side, threshold)
    if name == "mtcnn":
        return MTCNNDetector(min_face, max_side, threshold)
    raise ValueError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
