"""Following faces between detections with the face mesh, the decode thread, and the per-frame
schedule of the detector (real faces and real models throughout)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from core.face_pose import PoseAnalyser, default_pose_estimator
from core.faces import FaceObservation
from core.headpose import solve_pose
from core.identity import load_rgb
from core.pipeline import analyze
from core.settings import Settings
from core.store import Store
from core.video import prefetch, sample_frames
from models.canonical_face import CANONICAL_FACE
from tests.conftest import fixture
from tests.test_headpose import FIXTURES, faces


def _shift(rgb: np.ndarray, dx: float, dy: float, scale: float = 1.0) -> np.ndarray:
    h, w = rgb.shape[:2]
    m = np.array([[scale, 0.0, dx + (1 - scale) * w / 2], [0.0, scale, dy + (1 - scale) * h / 2]])
    return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _first_sample(rgb: np.ndarray) -> tuple[PoseAnalyser, FaceObservation]:
    boxes, marks = faces(rgb)
    face = FaceObservation(0, 0.0, tuple(float(v) for v in boxes[0]), 0.99, landmarks=marks[0], track_id=7)
    analyser = PoseAnalyser(default_pose_estimator())
    (analysed,) = analyser.analyse([(rgb, [face])])
    return analyser, analysed[0]


def test_the_mesh_follows_a_moving_face_and_keeps_its_pose():
    rgb = load_rgb(FIXTURES / "frontal_male.jpg")
    analyser, first = _first_sample(rgb)
    assert analyser.can_propagate
    moved = _shift(rgb, 14, -9, scale=1.1)
    (followed,) = analyser.propagate(moved, 1, 1.0)
    assert followed.track_id == 7 and followed.t == 1.0 and followed.det_score > 0.9
    # Where the detector itself finds the face in the moved picture:
    boxes, _ = faces(moved)
    truth = boxes[0]
    got = np.array(followed.box)
    side = truth[2] - truth[0]
    assert np.abs(got - truth).max() < 0.12 * side, (got, truth)
    assert (got[2] - got[0]) / (first.box[2] - first.box[0]) == pytest.approx(1.1, abs=0.06)
    assert abs(followed.yaw - first.yaw) < 5 and followed.eyes_open is not None
    assert followed.landmarks is not None and followed.landmarks.shape == (5, 2)


def test_a_face_that_left_is_not_followed():
    rgb = load_rgb(FIXTURES / "frontal_male.jpg")
    analyser, _ = _first_sample(rgb)
    empty = np.full_like(rgb, 128)
    assert analyser.propagate(empty, 1, 1.0) == []
    assert not analyser.can_propagate  # the next sample must be detected


def test_tiny_faces_get_pose_but_no_eye_state():
    """Eyes ~5 px wide (a back-row face) cannot be read: eyes_open is None, not a guess."""
    rgb = load_rgb(FIXTURES / "frontal_male.jpg")
    boxes, marks = faces(rgb)
    k = 28.0 / (boxes[0, 2] - boxes[0, 0])  # the face becomes ~28 px wide
    small = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    canvas = np.full((240, 320, 3), 110, np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small[:240, :320]
    face = FaceObservation(0, 0.0, tuple(float(v) * k for v in boxes[0]), 0.99, landmarks=marks[0] * k, track_id=1)
    (out,) = PoseAnalyser(default_pose_estimator()).analyse([(canvas, [face])])
    assert out[0].yaw is not None and out[0].eyes_open is None


def test_pose_fit_recovers_a_known_head_rotation():
    """468 canonical points projected with a known pose (+0.5 px noise): SQPnP gets the angles back."""
    from core.headpose import angles_from_rotation

    rng = np.random.default_rng(0)
    h, w = 720, 1280
    rvec = cv2.Rodrigues(np.diag([1.0, -1.0, -1.0]) @ cv2.Rodrigues(np.array([0.1, 0.35, -0.05]))[0])[0]
    tvec = np.array([[3.0], [-2.0], [60.0]])
    cam = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1.0]])
    img = cv2.projectPoints(CANONICAL_FACE.astype(np.float64), rvec, tvec, cam, np.zeros(4))[0].reshape(-1, 2)
    fit = solve_pose(img + rng.normal(0, 0.5, img.shape), CANONICAL_FACE, h, w)
    assert fit is not None and fit[1] < 1.5  # RMS reprojection error, px
    expected = angles_from_rotation(cv2.Rodrigues(rvec)[0])
    assert np.allclose(fit[0], expected, atol=1.0), (fit[0], expected)
    assert abs(expected[0]) > 10  # a clearly turned head, not a trivial frontal case


def test_prefetch_yields_in_order_raises_in_order_and_stops_early():
    def numbers():
        yield from range(5)
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for x in prefetch(numbers(), depth=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]

    frames = prefetch(sample_frames(fixture("WolfgangLanger_Pexels.mp4"), 1.0), depth=2)
    first = next(frames)
    frames.close()  # leaving early: the decode thread stops, nothing hangs
    assert first.t == 0.0
    assert [f.t for f in prefetch(sample_frames(fixture("WolfgangLanger_Pexels.mp4"), 1.0))] == [
        f.t for f in sample_frames(fixture("WolfgangLanger_Pexels.mp4"), 1.0)
    ]


class _CountingDetector:
    def __init__(self, inner):
        self.inner, self.frames = inner, 0

    def detect_batch(self, frames, indices, times):
        self.frames += len(frames)
        return self.inner.detect_batch(frames, indices, times)


@pytest.mark.parametrize("every", [1, 2, 4])
def test_the_detector_runs_on_every_nth_sample_and_the_face_is_seen_throughout(tmp_path, models, every):
    counting = _CountingDetector(models.detector)
    settings = Settings(detect_every=every, identify=False)
    store = Store(tmp_path / "db.duckdb")
    light = dataclasses.replace(models, detector=counting, embedder=None)
    result = analyze(fixture("WolfgangLanger_Pexels.mp4"), store, settings, models=light)
    assert result.frames_sampled == 20
    assert counting.frames == 20 // every
    assert result.students == 1 and result.observations == 20
