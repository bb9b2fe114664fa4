"""Pipeline stage for head pose and eyes: fills yaw/pitch/roll, eyes_open and gaze per face,
with head angles smoothed per track (pose from single frames jitters by a few degrees)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.faces import FaceObservation


class _HeadposeEstimator:
    """Adapter over core.headpose.estimate_pose (MediaPipe mesh + solvePnP, 5-point fallback)."""

    def __init__(self) -> None:
        from core import headpose

        self._headpose = headpose

    def estimate(self, rgb: np.ndarray, faces: list[FaceObservation]) -> list[object]:
        boxes = np.array([f.box for f in faces], dtype=np.float32).reshape(-1, 4)
        landmarks = [f.landmarks for f in faces]
        return self._headpose.estimate_pose(rgb, boxes, landmarks=landmarks)


def default_pose_estimator() -> _HeadposeEstimator:
    return _HeadposeEstimator()


class PoseAnalyser:
    """Per run: head pose and eye state for every face, exponentially smoothed per track.

    Args:
        estimator: object with `estimate(rgb, faces) -> list[PoseResult]` (yaw, pitch, roll,
            eyes_open, gaze_x, gaze_y attributes; None where not measurable).
        alpha: weight of the newest sample in the smoothing (1 = no smoothing).
        reset_s: a track unseen for this long starts its smoothing afresh.
    """

    def __init__(self, estimator: object, alpha: float = 0.6, reset_s: float = 3.0) -> None:
        self.estimator = estimator
        self.alpha = alpha
        self.reset_s = reset_s
        self._state: dict[int, tuple[float, np.ndarray]] = {}

    def _smooth(self, track_id: int | None, t: float, angles: np.ndarray) -> np.ndarray:
        if track_id is None or not np.all(np.isfinite(angles)):
            return angles
        prev = self._state.get(track_id)
        if prev is not None and t - prev[0] <= self.reset_s:
            angles = self.alpha * angles + (1 - self.alpha) * prev[1]
        self._state[track_id] = (t, angles)
        return angles

    def analyse(self, frames: list[tuple[np.ndarray, list[FaceObservation]]]) -> list[list[FaceObservation]]:
        out = []
        for rgb, faces in frames:
            if not faces:
                out.append([])
                continue
            results = self.estimator.estimate(rgb, faces)  # type: ignore[attr-defined]
            filled = []
            for face, r in zip(faces, results, strict=True):
                if r is None:
                    filled.append(face)
                    continue
                raw = np.array([_num(r.yaw), _num(r.pitch), _num(r.roll)], dtype=float)
                yaw, pitch, roll = self._smooth(face.track_id, face.t, raw)
                filled.append(
                    replace(
                        face,
                        yaw=_opt(yaw),
                        pitch=_opt(pitch),
                        roll=_opt(roll),
                        eyes_open=_opt(_num(getattr(r, "eyes_open", None))),
                        gaze_x=_opt(_num(getattr(r, "gaze_x", None))),
                        gaze_y=_opt(_num(getattr(r, "gaze_y", None))),
                    )
                )
            out.append(filled)
        return out


def _num(v: object) -> float:
    return float("nan") if v is None else float(v)  # type: ignore[arg-type]


def _opt(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)
