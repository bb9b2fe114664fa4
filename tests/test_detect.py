"""core.vision.detect on real photos: the YuNet + O-Net default against the MTCNN reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.track import iou_matrix
from core.vision.detect import MTCNNDetector, YuNetDetector, make_detector
from tests.conftest import fixture


def _rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(fixture(name))), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector()


@pytest.mark.parametrize(("image", "faces"), [("t1.jpg", 6), ("multi_face.jpg", 5), ("0-f15-hao-ph.jpg", 1)])
def test_yunet_finds_every_face_of_real_photos(yunet, image, faces):
    found = yunet.detect(_rgb(image), frame_index=3, t=1.5)
    assert len(found) == faces
    assert all(f.det_score >= 0.9 and f.frame_index == 3 and f.t == 1.5 for f in found)
    assert all(f.landmarks is not None and f.landmarks.shape == (5, 2) for f in found)


def test_yunet_boxes_and_landmarks_follow_mtcnn_conventions(yunet):
    """O-Net refinement keeps MTCNN's box geometry and landmark order (image-left eye first)."""
    rgb = _rgb("t1.jpg")
    ours, ref = yunet.detect(rgb), MTCNNDetector().detect(rgb)
    m = iou_matrix(np.array([f.box for f in ours]), np.array([f.box for f in ref]))
    assert (m.max(axis=1) > 0.8).all(), m.max(axis=1)
    for i, j in enumerate(m.argmax(axis=1)):
        width = ref[j].width
        assert np.abs(ours[i].landmarks - ref[j].landmarks).max() < 0.15 * width
        left_eye, right_eye = ours[i].landmarks[0], ours[i].landmarks[1]
        assert left_eye[0] < right_eye[0]


def test_no_face_frame_gives_no_face(yunet):
    import av

    with av.open(str(fixture("no_face.mp4"))) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert yunet.detect(frame) == []
    assert yunet.detect_batch([], [], []) == []


def test_small_faces_are_found_after_downscaling(yunet):
    """Faces of ~25 px (the back row) are still found at the default min_face."""
    rgb = _rgb("t1.jpg")
    small = cv2.resize(rgb, (rgb.shape[1] // 4, rgb.shape[0] // 4), interpolation=cv2.INTER_AREA)
    assert len(yunet.detect(small)) >= 5


def test_unknown_detector_name_is_refused():
    with pytest.raises(ValueError, match="yunet"):
        make_detector("haar")
