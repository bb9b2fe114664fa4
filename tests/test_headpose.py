"""Head pose and eyes on real faces (tests/fixtures/headpose): signs, mirrors, tilts, lids."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.vision.detect import MTCNNDetector
from core.vision.headpose import (
    PoseResult,
    PoseSmoother,
    angles_from_rotation,
    estimate_pose,
    estimate_pose_five_points,
)
from core.vision.identity import load_rgb

FIXTURES = Path(__file__).parent / "fixtures" / "headpose"


@cache
def _detector() -> MTCNNDetector:
    return MTCNNDetector(min_face=20)


def faces(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) boxes and (N, 5, 2) MTCNN landmarks, sorted left to right."""
    found = sorted(_detector().detect(rgb), key=lambda f: f.box[0])
    return np.array([f.box for f in found]).reshape(-1, 4), np.array([f.landmarks for f in found]).reshape(-1, 5, 2)


def poses(rgb: np.ndarray) -> list[PoseResult]:
    boxes, marks = faces(rgb)
    return estimate_pose(rgb, boxes, marks)


def mirror(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, ::-1])


@pytest.fixture(scope="module")
def frontal() -> np.ndarray:
    return load_rgb(FIXTURES / "frontal_male.jpg")


def test_frontal_face_is_near_zero_with_open_eyes(frontal: np.ndarray) -> None:
    (p,) = poses(frontal)
    assert p.landmarks == "mesh468"
    assert abs(p.yaw) < 12 and abs(p.roll) < 10 and abs(p.pitch) < 15
    assert p.eyes_open > 0.8 and p.ear > 0.22
    assert abs(p.gaze_x) < 0.3 and abs(p.gaze_y) < 0.4


@pytest.mark.parametrize("name", ["turned_right.jpg", "frontal_male.jpg", "eyes_open.jpg"])
def test_mirroring_flips_yaw_and_roll(name: str) -> None:
    rgb = load_rgb(FIXTURES / name)
    (a,), (b,) = poses(rgb)[:1], poses(mirror(rgb))[:1]
    assert a.yaw == pytest.approx(-b.yaw, abs=6)
    assert a.roll == pytest.approx(-b.roll, abs=6)
    assert a.pitch == pytest.approx(b.pitch, abs=6)


def test_a_face_turned_to_its_right_has_negative_yaw() -> None:
    rgb = load_rgb(FIXTURES / "turned_right.jpg")  # turned towards the image's left
    (p,) = poses(rgb)
    assert p.yaw < -15
    (q,) = poses(mirror(rgb))  # now turned to the student's left
    assert q.yaw > 15


def test_heads_tilted_to_their_right_shoulders_have_negative_roll() -> None:
    rgb = load_rgb(FIXTURES / "tilted_pair.jpg")
    left, right = poses(rgb)
    assert left.roll < -25 and right.roll < -25
    assert all(p.roll > 25 for p in poses(mirror(rgb)))


@pytest.mark.parametrize("angle", [-30, 20])
def test_rotating_the_frame_moves_roll_not_yaw(frontal: np.ndarray, angle: float) -> None:
    (upright,) = poses(frontal)
    h, w = frontal.shape[:2]
    box, _ = faces(frontal)
    centre = ((box[0, 0] + box[0, 2]) / 2, (box[0, 1] + box[0, 3]) / 2)
    # cv2: positive angle = counter-clockwise in the image = towards the student's right shoulder.
    rotated = cv2.warpAffine(
        frontal, cv2.getRotationMatrix2D(centre, angle, 1.0), (w, h), borderMode=cv2.BORDER_REPLICATE
    )
    (p,) = poses(rotated)
    assert p.roll - upright.roll == pytest.approx(-angle, abs=6)
    assert abs(p.yaw - upright.yaw) < 8


def test_attention_signals_turned_lowered_and_open_faces() -> None:
    """The three cues attention uses separate real faces: front-facing, turned away, eyes down."""
    (front,) = poses(load_rgb(FIXTURES / "frontal_male.jpg"))
    (turned,) = poses(load_rgb(FIXTURES / "turned_right.jpg"))
    lowered = poses(load_rgb(FIXTURES / "eyes_lowered.jpg"))[0]
    opened = poses(load_rgb(FIXTURES / "eyes_open.jpg"))[0]
    assert abs(front.yaw) + 10 < abs(turned.yaw)
    assert lowered.eyes_open < 0.3 < 0.8 < opened.eyes_open
    assert lowered.ear < 0.12 < 0.2 < opened.ear


def test_five_point_fallback_keeps_the_signs(frontal: np.ndarray) -> None:
    turned = load_rgb(FIXTURES / "turned_right.jpg")
    (f,) = estimate_pose_five_points(frontal.shape, faces(frontal)[1])
    (t,) = estimate_pose_five_points(turned.shape, faces(turned)[1])
    (m,) = estimate_pose_five_points(turned.shape, faces(mirror(turned))[1])
    assert f.landmarks == t.landmarks == "mtcnn5" and f.eyes_open is None
    assert abs(f.yaw) < 15
    assert t.yaw < -10 < 10 < m.yaw


def test_no_mesh_no_landmarks_gives_an_empty_result() -> None:
    blank = np.full((200, 200, 3), 127, np.uint8)
    (p,) = estimate_pose(blank, np.array([[50.0, 50.0, 150.0, 150.0]]))
    assert p == PoseResult(None, None, None)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Model-to-camera rotation of a head with these angles (degrees), for the table below."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(-p), -math.sin(-p)], [0, math.sin(-p), math.cos(-p)]])
    rz = np.array([[math.cos(-r), -math.sin(-r), 0], [math.sin(-r), math.cos(-r), 0], [0, 0, 1]])
    return np.diag([1.0, -1.0, -1.0]) @ ry @ rx @ rz


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (30, 0, 0), (-45, 10, 0), (0, -20, 15), (60, 25, -30)])
def test_angles_round_trip(yaw: float, pitch: float, roll: float) -> None:
    assert angles_from_rotation(_rotation(yaw, pitch, roll)) == pytest.approx((yaw, pitch, roll), abs=1e-6)


def test_positive_yaw_moves_the_nose_to_the_image_right() -> None:
    nose = np.array([0.0, 0.0, 1.0])  # out of the face, canonical frame
    camera_x = (_rotation(30, 0, 0) @ nose)[0]
    assert camera_x > 0  # image x grows to the right


def test_smoother_ignores_a_single_outlier_and_resets_after_a_gap() -> None:
    s = PoseSmoother(window=5, max_gap_s=2.0)
    out = [s.update(7, t, PoseResult(y, 0.0, 0.0, 1.0)) for t, y in enumerate([2.0, 3.0, 80.0, 2.5, 3.5])]
    assert out[-1].yaw == pytest.approx(3.0)
    assert s.update(8, 0.0, PoseResult(-40.0, 0.0, 0.0)).yaw == -40.0  # other tracks are separate
    assert s.update(7, 10.0, PoseResult(-50.0, None, None)).yaw == -50.0  # 6 s later: fresh start
    assert s.update(7, 10.5, PoseResult(None, None, None, 0.2)).yaw == -50.0  # missing values skipped
