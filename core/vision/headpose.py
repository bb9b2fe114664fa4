"""Head pose (yaw, pitch, roll), eye openness and gaze per face, and per-track smoothing.

Conventions (degrees, in the student's own frame, 0/0/0 = facing the camera squarely):
    yaw:   positive = head turned to the student's LEFT (the nose moves towards the image's right
           in an unmirrored camera image); a horizontally mirrored image flips its sign.
    pitch: positive = head tilted UP (chin raised).
    roll:  positive = head tilted towards the student's LEFT shoulder (clockwise in the image).
    gaze_x / gaze_y: iris offset inside the eye, -1..1; positive = towards the student's left /
           upwards, relative to the head (add to yaw / pitch for where the eyes point).

Pose comes from cv2.solvePnP of the 468 face-mesh points (models/landmarks.py) against MediaPipe's
canonical 3D face (models/canonical_face.py), with a fallback on MTCNN's 5 points when the mesh
is unavailable. The camera is assumed pinhole with focal length = the frame's longer side.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from models.canonical_face import CANONICAL_FACE
from models.landmarks import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS, FaceMesh, LandmarkModel

# Eye aspect ratio (Soukupová & Čech 2016) on mesh points: corners p1, p4; upper lid p2, p3;
# lower lid p6, p5. EAR = (|p2-p6| + |p3-p5|) / (2 |p1-p4|).
EAR_POINTS = ((33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380))
# EAR -> openness: linear between these values, clipped to [0, 1]. EAR_OPEN is the lower end of
# what the iris-refined mesh gives on open-eyed real faces (tests/test_headpose.py); closed lids
# measure ~0.05-0.1 in the literature for this point set.
EAR_CLOSED = 0.10
EAR_OPEN = 0.22

# MediaPipe canonical points matching MTCNN's landmarks: image-left eye, image-right eye, nose
# tip, image-left mouth corner, image-right mouth corner.
_FIVE_POINT_MODEL = np.stack(
    [
        CANONICAL_FACE[list(RIGHT_EYE_CORNERS)].mean(axis=0),
        CANONICAL_FACE[list(LEFT_EYE_CORNERS)].mean(axis=0),
        CANONICAL_FACE[1],
        CANONICAL_FACE[61],
        CANONICAL_FACE[291],
    ]
)
# The canonical face has +x = student's left, +y up, +z towards the viewer; OpenCV's camera has
# +x right, +y down, +z away. A face looking straight at the camera is this rotation.
_FRONTAL = np.diag([1.0, -1.0, -1.0])
_SQPNP_MIN_POINTS = 6  # fewer points (MTCNN's 5) use the iterative solver from a frontal start


@dataclass(frozen=True)
class PoseResult:
    """Head pose and eye state of one face (see the module docstring for sign conventions).

    Attributes:
        yaw, pitch, roll: degrees, or None when no landmarks were usable.
        eyes_open: openness in [0, 1] from the mean eye aspect ratio (None without a mesh, or
            when the eyes are too small in the frame to read: models.landmarks.IRIS_MIN_EYE_PX).
        ear: raw mean eye aspect ratio (None whenever eyes_open is).
        gaze_x, gaze_y: iris offset in -1..1 (None without the iris model).
        landmarks: which landmarks gave the pose: "mesh468", "mtcnn5" or "none".
        reprojection_px: RMS reprojection error of the pose fit, pixels (None without a fit).
    """

    yaw: float | None
    pitch: float | None
    roll: float | None
    eyes_open: float | None = None
    ear: float | None = None
    gaze_x: float | None = None
    gaze_y: float | None = None
    landmarks: str = "none"
    reprojection_px: float | None = None


def camera_matrix(height: int, width: int) -> np.ndarray:
    """Pinhole intrinsics guess: focal length = longer side, principal point = centre (pixels)."""
    f = float(max(height, width))
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees from a model-to-camera rotation matrix (3, 3).

    The head's own rotation H = FRONTAL^T R is decomposed as Ry(yaw) Rx(-pitch) Rz(-roll) about
    the face's axes (+x student's left, +y up, +z out of the face).
    """
    h = _FRONTAL.T @ rotation
    yaw = math.degrees(math.atan2(h[0, 2], h[2, 2]))
    pitch = -math.degrees(math.asin(max(-1.0, min(1.0, -h[1, 2]))))
    roll = -math.degrees(math.atan2(h[1, 0], h[1, 1]))
    return yaw, pitch, roll


def solve_pose(
    image_points: np.ndarray, model_points: np.ndarray, height: int, width: int
) -> tuple[tuple[float, float, float], float] | None:
    """Fit the 3D model to 2D points; returns ((yaw, pitch, roll) degrees, RMS error px) or None.

    Args:
        image_points: (K, 2) pixels.
        model_points: (K, 3) the same points on the canonical face (cm).
        height, width: frame size in pixels (for the camera guess).
    """
    obj = np.ascontiguousarray(model_points, np.float64)
    img = np.ascontiguousarray(image_points, np.float64).reshape(-1, 1, 2)
    cam = camera_matrix(height, width)
    dist = np.zeros(4)
    # Start in front of the camera, facing it, at a distance that matches the face's size.
    span_px = float(np.ptp(img[:, 0, 0])) or 1.0
    span_cm = float(np.ptp(obj[:, 0])) or 1.0
    centre = img[:, 0].mean(axis=0)
    z = cam[0, 0] * span_cm / span_px
    tvec = np.array([[(centre[0] - cam[0, 2]) * z / cam[0, 0]], [(centre[1] - cam[1, 2]) * z / cam[1, 1]], [z]])
    if len(obj) >= _SQPNP_MIN_POINTS:
        # SQPnP: globally optimal, no start needed, ~10x faster than Levenberg-Marquardt on the
        # 468 mesh points (0.2 ms vs 2 ms a face) and within 0.2 degrees of it on average.
        ok, rvec, tvec = cv2.solvePnP(obj, img, cam, dist, flags=cv2.SOLVEPNP_SQPNP)
    else:
        rvec = cv2.Rodrigues(_FRONTAL)[0]
        ok, rvec, tvec = cv2.solvePnP(
            obj, img, cam, dist, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
        )
    if not ok or not np.all(np.isfinite(rvec)) or float(tvec[2, 0]) <= 0:
        return None
    projected = cv2.projectPoints(obj, rvec, tvec, cam, dist)[0].reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((projected - img.reshape(-1, 2)) ** 2, axis=1))))
    return angles_from_rotation(cv2.Rodrigues(rvec)[0]), rms


def eye_aspect_ratio(points: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes from (468, 2+) mesh points (unitless, ~0.3 open)."""
    ratios = []
    for p1, p2, p3, p4, p5, p6 in EAR_POINTS:
        width = np.linalg.norm(points[p1, :2] - points[p4, :2])
        lids = np.linalg.norm(points[p2, :2] - points[p6, :2]) + np.linalg.norm(points[p3, :2] - points[p5, :2])
        ratios.append(lids / (2 * width) if width > 0 else 0.0)
    return float(np.mean(ratios))


def openness(ear: float) -> float:
    """Eye openness in [0, 1] from an eye aspect ratio."""
    return float(np.clip((ear - EAR_CLOSED) / (EAR_OPEN - EAR_CLOSED), 0.0, 1.0))


def gaze_offset(points: np.ndarray, irises: np.ndarray) -> tuple[float, float]:
    """(gaze_x, gaze_y) in -1..1: mean iris position between the eye corners of both eyes.

    x: along the corner-to-corner axis, +1 = at the corner towards the image's right (the
    student's left on an unmirrored frontal face); y: perpendicular, +1 = up by half an eye width.
    """
    xs, ys = [], []
    for (a_idx, b_idx), iris in zip((RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS), irises, strict=True):
        a, b = points[a_idx, :2].astype(float), points[b_idx, :2].astype(float)
        axis = b - a
        half = float(np.linalg.norm(axis)) / 2
        if half <= 0:
            continue
        u = axis / (2 * half)
        d = np.asarray(iris, float) - (a + b) / 2
        xs.append(float(d @ u) / half)
        ys.append(float(d @ np.array([u[1], -u[0]])) / half)  # (u_y, -u_x) points up in the image
    if not xs:
        return 0.0, 0.0
    return float(np.clip(np.mean(xs), -1, 1)), float(np.clip(np.mean(ys), -1, 1))


def eye_state(mesh: FaceMesh) -> tuple[float | None, float | None, float | None, float | None]:
    """(eyes_open, ear, gaze_x, gaze_y) of a mesh; None where it cannot tell (see PoseResult)."""
    ear = eye_aspect_ratio(mesh.points) if mesh.eyes_readable else None
    gaze = gaze_offset(mesh.points, mesh.irises) if mesh.irises is not None else (None, None)
    return (openness(ear) if ear is not None else None), ear, gaze[0], gaze[1]


def pose_from_mesh(mesh: FaceMesh, height: int, width: int) -> PoseResult:
    """PoseResult from a face mesh of a (height, width) frame."""
    fit = solve_pose(mesh.points[:, :2], CANONICAL_FACE, height, width)
    open_, ear, gx, gy = eye_state(mesh)
    if fit is None:
        return PoseResult(None, None, None, open_, ear, gx, gy, "mesh468")
    (yaw, pitch, roll), rms = fit
    return PoseResult(yaw, pitch, roll, open_, ear, gx, gy, "mesh468", rms)


def pose_from_five_points(points5: np.ndarray, height: int, width: int) -> PoseResult:
    """Coarse PoseResult from MTCNN's 5 landmarks ((5, 2) pixels, MTCNN order); no eye state."""
    fit = solve_pose(np.asarray(points5, float).reshape(5, 2), _FIVE_POINT_MODEL, height, width)
    if fit is None:
        return PoseResult(None, None, None)
    (yaw, pitch, roll), rms = fit
    return PoseResult(yaw, pitch, roll, landmarks="mtcnn5", reprojection_px=rms)


def estimate_pose(
    image_rgb: np.ndarray,
    boxes: np.ndarray,
    landmarks5: np.ndarray | None = None,
    model: LandmarkModel | None = None,
) -> list[PoseResult]:
    """Head pose and eye state of each face.

    Args:
        image_rgb: (H, W, 3) uint8 frame.
        boxes: (N, 4) x1, y1, x2, y2 pixels.
        landmarks5: optional (N, 5, 2) MTCNN landmarks: they straighten the mesh ROI of tilted
            heads and are the fallback when the mesh finds no face.
        model: the landmark model; the shared one when None (see `estimate_pose_five_points`
            for installs without the mesh model).

    Returns:
        One PoseResult per box, in order ("none" landmarks when neither source worked).
    """
    return [pose for pose, _ in estimate_pose_and_mesh(image_rgb, boxes, landmarks5, model)]


def estimate_pose_and_mesh(
    image_rgb: np.ndarray,
    boxes: np.ndarray,
    landmarks5: np.ndarray | None = None,
    model: LandmarkModel | None = None,
) -> list[tuple[PoseResult, FaceMesh | None]]:
    """Like `estimate_pose`, with each face's mesh (None where the mesh found no face)."""
    if model is None:
        from models.landmarks import default_landmark_model

        model = default_landmark_model()
    h, w = image_rgb.shape[:2]
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    five = None if landmarks5 is None else np.asarray(landmarks5, float).reshape(-1, 5, 2)
    out: list[tuple[PoseResult, FaceMesh | None]] = []
    for i, box in enumerate(boxes):
        mesh = model.mesh(image_rgb, box, eyes=None if five is None else five[i, :2])
        if mesh is not None:
            out.append((pose_from_mesh(mesh, h, w), mesh))
        elif five is not None:
            out.append((pose_from_five_points(five[i], h, w), None))
        else:
            out.append((PoseResult(None, None, None), None))
    return out


def five_points_from_mesh(points: np.ndarray) -> np.ndarray:
    """MTCNN-order 5 landmarks ((5, 2) pixels) taken from a (468, 2+) mesh."""
    return np.stack(
        [
            points[list(RIGHT_EYE_CORNERS), :2].mean(axis=0),
            points[list(LEFT_EYE_CORNERS), :2].mean(axis=0),
            points[1, :2],
            points[61, :2],
            points[291, :2],
        ]
    ).astype(np.float32)


def estimate_pose_five_points(image_shape: Sequence[int], landmarks5: np.ndarray) -> list[PoseResult]:
    """Pose from MTCNN's 5 points only (no mesh model): (N, 5, 2) pixels -> N coarse results."""
    h, w = int(image_shape[0]), int(image_shape[1])
    return [pose_from_five_points(p, h, w) for p in np.asarray(landmarks5, float).reshape(-1, 5, 2)]


_SMOOTHED = ("yaw", "pitch", "roll", "eyes_open", "gaze_x", "gaze_y")


class PoseSmoother:
    """Per-track running median of the last `window` poses, reset after a gap.

    A median (not a mean) so a single bad fit (a blur, a half-occluded face) does not move the
    value; `ear` and `landmarks` pass through from the newest observation.

    Args:
        window: number of recent observations per track.
        max_gap_s: a track unseen for longer than this starts afresh (seconds).
    """

    def __init__(self, window: int = 5, max_gap_s: float = 2.0) -> None:
        self.window = int(window)
        self.max_gap_s = float(max_gap_s)
        self._history: dict[int, deque[tuple[float, PoseResult]]] = {}

    def update(self, track_id: int, t: float, pose: PoseResult) -> PoseResult:
        """Add the pose of `track_id` at time `t` (seconds) and return the smoothed pose."""
        history = self._history.setdefault(track_id, deque(maxlen=self.window))
        if history and t - history[-1][0] > self.max_gap_s:
            history.clear()
        history.append((t, pose))
        values: dict[str, float | None] = {}
        for name in _SMOOTHED:
            seen = [getattr(p, name) for _, p in history if getattr(p, name) is not None]
            values[name] = float(np.median(seen)) if seen else None
        return replace(pose, **values)

    def forget(self, track_id: int) -> None:
        """Drop a finished track's history."""
        self._history.pop(track_id, None)
