"""YOLO11n-pose (Ultralytics, AGPL-3.0) on onnxruntime: people with 17 COCO keypoints.

The ONNX file is exported once at build time (models/export_yolo_pose.py); at run time only
onnxruntime is needed. Input: RGB letterboxed to a multiple of 32, values in [0, 1]. Output
(1, 56, N): box centre x, y, width, height, person score, then 17 x (x, y, visibility).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from models.weights_io import checked_path

YOLO_POSE_FILE = "yolo11n_pose.onnx"
YOLO_POSE_SHA256 = "b44562010fa9a8a675118a449fa364e5402a446228d182c80ed178b58a4e31d2"

# COCO keypoint order.
KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip


@dataclass(frozen=True)
class People:
    """People found in one frame.

    Attributes:
        boxes: (N, 4) xyxy pixels of the full frame.
        scores: (N,) person confidence in [0, 1].
        keypoints: (N, 17, 3) x, y pixels and visibility in [0, 1], `KEYPOINTS` order.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty() -> People:
        return People(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 17, 3), np.float32))


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression (IoU), best score first."""
    order = np.argsort(-scores)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        order = rest[inter / np.maximum(area[i] + area[rest] - inter, 1e-9) <= iou]
    return keep


class YoloPose:
    """People and keypoints with YOLO11n-pose.

    Args:
        input_side: the frame's longer side is scaled to this (a multiple of 32) before the
            network, up or down: small back-row students need 960-1280 px (on a 640x352 CCTV
            frame, 11-14 of 14 students at 960-1280 px, ../shared FACTS). On the labelled real
            clips (480-640 px wide), 640 found as many as 960 at half the cost, but they hold
            no small students, so small frames are still upscaled.
        threshold: least person score kept.
        nms_iou: boxes overlapping a better one by more than this are dropped.
        threads: onnxruntime intra-op threads (1 suits the two-thread analysis).
    """

    def __init__(
        self,
        input_side: int = 960,
        threshold: float = 0.25,
        nms_iou: float = 0.5,
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        path = checked_path(YOLO_POSE_FILE, YOLO_POSE_SHA256)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_side = max(32, int(input_side) // 32 * 32)
        self.threshold = float(threshold)
        self.nms_iou = float(nms_iou)
        self._lock = threading.Lock()  # one session shared by the app's threads

    def letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, float, int, int]:
        """(1, 3, H', W') float32 input, scale, x pad, y pad; H', W' multiples of 32."""
        h, w = rgb.shape[:2]
        scale = self.input_side / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        tw, th = -(-nw // 32) * 32, -(-nh // 32) * 32
        resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        px, py = (tw - nw) // 2, (th - nh) // 2
        canvas = np.full((th, tw, 3), 114, dtype=np.uint8)
        canvas[py : py + nh, px : px + nw] = resized
        x = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        return x, scale, px, py

    def detect(self, rgb: np.ndarray) -> People:
        """People in one (H, W, 3) uint8 RGB frame."""
        x, scale, px, py = self.letterbox(rgb)
        with self._lock:
            (out,) = self._session.run(None, {"images": x})
        pred = out[0].T  # (N, 56)
        pred = pred[pred[:, 4] >= self.threshold]
        if not len(pred):
            return People.empty()
        cx, cy, bw, bh = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        keep = _nms(boxes, pred[:, 4], self.nms_iou)
        boxes, scores = boxes[keep], pred[keep, 4]
        kpts = pred[keep, 5:].reshape(-1, 17, 3).copy()
        h, w = rgb.shape[:2]
        boxes[:, [0, 2]] = np.clip((boxes[:, [0, 2]] - px) / scale, 0, w)
        boxes[:, [1, 3]] = np.clip((boxes[:, [1, 3]] - py) / scale, 0, h)
        kpts[:, :, 0] = (kpts[:, :, 0] - px) / scale
        kpts[:, :, 1] = (kpts[:, :, 1] - py) / scale
        return People(boxes.astype(np.float32), scores.astype(np.float32), kpts.astype(np.float32))
