"""Pipeline stage for head pose and eyes: fills yaw/pitch/roll, eyes_open and gaze per face.

Head angles and gaze are smoothed per track by `core.vision.headpose.PoseSmoother` (a running median:
single-frame fits jitter by a few degrees); eye openness is kept raw so that the attention
score sees eye closures as they happen.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.faces import FaceObservation


class HeadposeEstimator:
    """Adapter over `core.vision.headpose` (MediaPipe mesh + solvePnP, 5-point fallback)."""

    def __init__(self) -> None:
        from models.landmarks import default_landmark_model

        self.model = default_landmark_model()

    def estimate(self, rgb: np.ndarray, faces: list[FaceObservation]) -> list[object]:
        return [pose for pose, _ in self.estimate_and_mesh(rgb, faces)]

    def estimate_and_mesh(self, rgb: np.ndarray, faces: list[FaceObservation]) -> list[tuple[object, object]]:
        """(PoseResult, FaceMesh or None) per face."""
        from core.vision.headpose import estimate_pose_and_mesh

        boxes = np.array([f.box for f in faces], dtype=np.float32).reshape(-1, 4)
        five = None
        if all(f.landmarks is not None for f in faces):
            five = np.stack([np.asarray(f.landmarks, dtype=np.float32) for f in faces])
        return estimate_pose_and_mesh(rgb, boxes, landmarks5=five, model=self.model)


def default_pose_estimator() -> HeadposeEstimator:
    return HeadposeEstimator()


class PoseAnalyser:
    """Per run: head pose and eye state for every face, smoothed per track.

    Args:
        estimator: object with `estimate(rgb, faces) -> list[PoseResult]` (HeadposeEstimator).
        window: samples in the per-track running median (angles and gaze).
    """

    def __init__(self, estimator: object, window: int = 3) -> None:
        from core.vision.headpose import PoseSmoother

        self.estimator = estimator
        self.smoother = PoseSmoother(window=window)

    def _fill(self, face: FaceObservation, raw: object) -> FaceObservation:
        pose = raw if face.track_id is None else self.smoother.update(face.track_id, face.t, raw)  # type: ignore[arg-type]
        return replace(
            face,
            yaw=pose.yaw,  # type: ignore[attr-defined]
            pitch=pose.pitch,  # type: ignore[attr-defined]
            roll=pose.roll,  # type: ignore[attr-defined]
            eyes_open=raw.eyes_open,  # type: ignore[attr-defined]
            gaze_x=pose.gaze_x,  # type: ignore[attr-defined]
            gaze_y=pose.gaze_y,  # type: ignore[attr-defined]
        )

    def analyse(self, frames: list[tuple[np.ndarray, list[FaceObservation]]]) -> list[list[FaceObservation]]:
        out = []
        for rgb, faces in frames:
            if not faces:
                out.append([])
                continue
            poses = self.estimator.estimate(rgb, faces)  # type: ignore[attr-defined]
            out.append([self._fill(face, raw) for face, raw in zip(faces, poses, strict=True)])
        return out
