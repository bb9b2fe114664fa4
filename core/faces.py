"""The per-face record that flows detector -> tracker -> analysers -> store.

Stages take and return `FaceObservation`s; later stages fill fields with `dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# FER-2013 label order (index = FER-2013 class id). Every emotion array in ClassLens uses it.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
POSE: tuple[str, ...] = ("yaw", "pitch", "roll")


@dataclass(frozen=True)
class FaceObservation:
    """One face in one sampled frame.

    Attributes:
        frame_index: index of the decoded frame in the video (0-based, display order).
        t: presentation time in seconds from the start of the video.
        box: (x1, y1, x2, y2) pixels in the upright frame.
        det_score: detector confidence in [0, 1].
        landmarks: (5, 2) pixels: left eye, right eye, nose, mouth left, mouth right (MTCNN order).
        track_id: stable per-lecture id of the physical face, set by the tracker (None before).
        emotion_probs: (7,) probabilities in `EMOTIONS` order, or None in attention-only mode.
        yaw, pitch, roll: head pose in degrees (yaw positive = turned to the student's left).
        eyes_open: probability-like openness in [0, 1] (None when not measured).
        attention: concentration score in [0, 1] (None when not computed).
        embedding: identity embedding (512,) float32, not stored per observation.
    """

    frame_index: int
    t: float
    box: tuple[float, float, float, float]
    det_score: float
    landmarks: np.ndarray | None = None
    track_id: int | None = None
    emotion_probs: np.ndarray | None = None
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    eyes_open: float | None = None
    gaze_x: float | None = None
    gaze_y: float | None = None
    attention: float | None = None
    embedding: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def dominant_emotion(self) -> tuple[str, float] | None:
        """(label, probability) of the most likely emotion, or None without emotion inference."""
        if self.emotion_probs is None:
            return None
        i = int(np.argmax(self.emotion_probs))
        return EMOTIONS[i], float(self.emotion_probs[i])
