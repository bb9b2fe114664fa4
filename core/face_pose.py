"""Pipeline stage for head pose and eyes: fills yaw/pitch/roll, eyes_open and gaze per face.

Head angles and gaze are smoothed per track by `core.headpose.PoseSmoother` (a running median:
single-frame fits jitter by a few degrees); eye openness is kept raw so that the attention
score sees eye closures as they happen.

The stage also follows faces between detections (`PoseAnalyser.propagate`): the face mesh it
runs anyway for the pose says where each face of the previous sample is now, so the detector
need not run on every sampled frame (MediaPipe's own face-mesh pipeline works the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.faces import FaceObservation


@dataclass(frozen=True)
class _Anchor:
    """Where a track's face was at its latest sample: box, mesh centre and size, 5 landmarks."""

    box: tuple[float, float, float, float]
    centre: np.ndarray
    size: float
    five: np.ndarray  # MTCNN order; the first two (eye centres) straighten the next mesh ROI


def _anchor(box: tuple[float, float, float, float], points: np.ndarray) -> _Anchor:
    from core.headpose import five_points_from_mesh

    xy = points[:, :2].astype(float)
    size = float(np.sqrt(max(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1]), 1e-6)))
    return _Anchor(box, xy.mean(axis=0), size, five_points_from_mesh(points))


class HeadposeEstimator:
    """Adapter over `core.headpose` (MediaPipe mesh + solvePnP, 5-point fallback)."""

    def __init__(self) -> None:
        from models.landmarks import default_landmark_model

        self.model = default_landmark_model()

    def estimate(self, rgb: np.ndarray, faces: list[FaceObservation]) -> list[object]:
        return [pose for pose, _ in self.estimate_and_mesh(rgb, faces)]

    def estimate_and_mesh(self, rgb: np.ndarray, faces: list[FaceObservation]) -> list[tuple[object, object]]:
        """(PoseResult, FaceMesh or None) per face."""
        from core.headpose import estimate_pose_and_mesh

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
        estimator: object with `estimate(rgb, faces) -> list[PoseResult]`; with
            `estimate_and_mesh` as well (HeadposeEstimator), faces can also be followed between
            detections with `propagate`.
        window: samples in the per-track running median (angles and gaze).
    """

    def __init__(self, estimator: object, window: int = 3) -> None:
        from core.headpose import PoseSmoother

        self.estimator = estimator
        self.smoother = PoseSmoother(window=window)
        self._anchors: dict[int, _Anchor] = {}  # tracks of the latest sample with a mesh

    @property
    def can_propagate(self) -> bool:
        """True when the latest sample left faces that `propagate` can follow."""
        return bool(self._anchors) and hasattr(self.estimator, "estimate_and_mesh")

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
        with_mesh = hasattr(self.estimator, "estimate_and_mesh")
        for rgb, faces in frames:
            self._anchors = {}
            if not faces:
                out.append([])
                continue
            if with_mesh:
                pairs = self.estimator.estimate_and_mesh(rgb, faces)  # type: ignore[attr-defined]
            else:
                pairs = [(p, None) for p in self.estimator.estimate(rgb, faces)]  # type: ignore[attr-defined]
            filled = []
            for face, (raw, mesh) in zip(faces, pairs, strict=True):
                filled.append(self._fill(face, raw))
                if mesh is not None and face.track_id is not None:
                    self._anchors[face.track_id] = _anchor(face.box, mesh.points)
            out.append(filled)
        return out

    def propagate(self, rgb: np.ndarray, frame_index: int, t: float) -> list[FaceObservation]:
        """Faces of the latest sample, found again in this frame by the face mesh alone.

        Each face's mesh is run in the region where the face was; where the mesh still sees a
        face, the box moves with the mesh's centre and scales with its size, and the pose comes
        from that same mesh. A face the mesh no longer sees is dropped until the next detection.
        `det_score` of a followed face is the mesh's face-presence probability.

        Returns:
            Observations with `track_id`, box, 5 landmarks (from the mesh) and pose filled.
        """
        from core.headpose import pose_from_mesh

        h, w = rgb.shape[:2]
        model = self.estimator.model  # type: ignore[attr-defined]
        anchors, self._anchors = self._anchors, {}
        out = []
        for tid, a in anchors.items():
            mesh = model.mesh(rgb, np.asarray(a.box, float), eyes=a.five[:2])
            if mesh is None:
                continue
            now = _anchor(a.box, mesh.points)
            scale = now.size / a.size
            cx = (a.box[0] + a.box[2]) / 2 + now.centre[0] - a.centre[0]
            cy = (a.box[1] + a.box[3]) / 2 + now.centre[1] - a.centre[1]
            half_w, half_h = (a.box[2] - a.box[0]) * scale / 2, (a.box[3] - a.box[1]) * scale / 2
            if not (0 <= cx < w and 0 <= cy < h):
                continue  # the face left the picture
            box = (float(cx - half_w), float(cy - half_h), float(cx + half_w), float(cy + half_h))
            face = FaceObservation(
                frame_index, t, box, det_score=float(mesh.presence),
                landmarks=now.five, track_id=tid,
            )  # fmt: skip
            out.append(self._fill(face, pose_from_mesh(mesh, h, w)))
            self._anchors[tid] = replace(now, box=box)
        return out
