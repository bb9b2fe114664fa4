"""core.attention: the documented formula, table-driven."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.attention import Front, attention_scores, calibrate_front, fatigue_flags, head_term

FRONT = Front(10.0, -5.0, learnt=True)


@pytest.mark.parametrize(
    ("yaw", "pitch", "expected"),
    [
        (10.0, -5.0, 1.0),  # looking at the front
        (25.0, -5.0, 1.0),  # inside the 20° cone
        (50.0, -5.0, 0.5),  # 40° off: half way to 60°
        (80.0, -5.0, 0.0),  # turned away
        (10.0, 55.0, 0.0),  # looking far up
        (np.nan, np.nan, 1.0),  # pose unknown: no penalty
    ],
)
def test_head_term(yaw, pitch, expected):
    assert head_term(np.array([yaw]), np.array([pitch]), FRONT)[0] == pytest.approx(expected)


def test_front_is_the_median_direction_of_the_class():
    yaw = np.array([30.0, 32.0, 28.0, -60.0, np.nan])
    pitch = np.array([0.0, 2.0, -2.0, 0.0, 5.0])
    front = calibrate_front(yaw, pitch)
    assert front is not None and front.learnt
    assert front.yaw == pytest.approx(29.0) and front.pitch == pytest.approx(0.0)
    assert calibrate_front(np.array([np.nan]), np.array([np.nan])) is None


def test_long_eye_closure_is_fatigue_short_blink_is_not():
    t = np.arange(10) * 0.5
    student = np.ones(10, dtype=int)
    eyes = np.array([1, 0.1, 1, 1, 0.1, 0.1, 0.1, 0.1, 1, 1])  # a blink, then 1.5 s closed
    flags = fatigue_flags(student, t, eyes)
    assert flags.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]


def test_attention_falls_when_turned_away_or_eyes_closed_and_works_without_emotions():
    obs = pd.DataFrame(
        {
            "student_id": [1, 1, 2, 3],
            "frame_index": [0, 1, 0, 0],
            "t": [0.0, 0.5, 0.0, 0.0],
            "yaw": [10.0, 10.0, 80.0, 10.0],
            "pitch": [-5.0, -5.0, -5.0, -5.0],
            "eyes_open": [1.0, 1.0, 1.0, 0.0],
        }
    )
    att = attention_scores(obs, FRONT)
    assert att[0] == pytest.approx(1.0)
    assert att[2] == pytest.approx(0.0)  # turned away
    assert att[3] == pytest.approx(0.5)  # eyes closed (short): half
    with_emotion = obs.assign(p_sad=[0.0, 1.0, 0.0, 0.0], p_fear=[0.0, 0.0, 0.0, 0.0])
    assert attention_scores(with_emotion, FRONT)[1] == pytest.approx(0.8)


# -- end to end on real faces -------------------------------------------------------------------


def test_every_observation_has_pose_eyes_and_attention(analysed_db):
    store, result = analysed_db
    df = store.query_df(
        "SELECT t, yaw, pitch, roll, eyes_open, attention FROM observations WHERE lecture_id = ?", [result.lecture_id]
    )
    assert len(df) == 20  # 20 s at 1 fps
    assert df[["yaw", "pitch", "roll", "eyes_open", "attention"]].notna().all().all()
    assert df["attention"].between(0, 1).all()
    # In this clip she keeps her eyes shut for the first seconds, then opens them and laughs.
    closed = df[df["t"] < 5.5]
    opened = df[(df["t"] > 10) & (df["t"] < 17)]
    assert closed["eyes_open"].mean() < 0.3 < 0.8 < opened["eyes_open"].mean()
    assert closed["attention"].mean() < opened["attention"].mean() - 0.3


def test_engagement_per_minute_in_the_students_csv(analysed_db):
    import io

    from core import exports

    store, result = analysed_db
    mean = store.query_df("SELECT avg(attention) AS a FROM observations WHERE lecture_id = ?", [result.lecture_id])
    csv = pd.read_csv(io.StringIO(exports.students_csv(store, result.lecture_id)))
    # One minute, every moment present and judged: the minute's engagement is the plain mean.
    assert [c for c in csv.columns if c.startswith("engagement_minute_")] == ["engagement_minute_1"]
    assert csv["engagement_minute_1"][0] == pytest.approx(mean["a"][0], abs=1e-3)
    assert csv["engagement"][0] == pytest.approx(mean["a"][0], abs=1e-3)


def _canvas_video(path, frames_rgb, fps=2):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames_rgb[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for img in frames_rgb:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_turning_away_lowers_attention_in_a_video_built_from_real_faces(tmp_path, models):
    """Three students face the front all along; the fourth seat holds a frontal face, then a real
    photo of a man with his head turned to his right. His attention must drop once turned.

    Still photos are pictures, not students (their pixels never change), so each seat alternates
    between two photos of the same kind, as a live face changes from second to second."""
    import cv2

    from core.pipeline import analyze
    from core.settings import Settings
    from core.store import Store
    from tests.conftest import fixture

    def face(name, h=170):
        img = cv2.cvtColor(cv2.imread(str(fixture(name))), cv2.COLOR_BGR2RGB)
        return cv2.resize(img, (round(img.shape[1] * h / img.shape[0]), h))

    front = [face("headpose/frontal_male.jpg"), face("headpose/eyes_open.jpg"), face("0-f15-hao-ph.jpg")]
    frontal_4th = [face("identity/obama_1.jpg"), face("identity/obama_2.jpg")]
    turned = face("headpose/turned_right.jpg")
    turned_4th = [turned, np.ascontiguousarray(turned[:, ::-1])]  # turned to his right, then left
    frames = []
    for i in range(12):
        canvas = np.full((400, 1280, 3), 90, np.uint8)
        seats = [*front[i % 3 :], *front[: i % 3], (frontal_4th if i < 6 else turned_4th)[i % 2]]
        for k, img in enumerate(seats):
            x = 20 + k * 320
            canvas[100 : 100 + img.shape[0], x : x + min(img.shape[1], 300)] = img[:, :300]
        frames.append(canvas)
    video = tmp_path / "turning.mp4"
    _canvas_video(video, frames)
    store = Store(tmp_path / "t.duckdb")
    result = analyze(video, store, Settings(identify=False, fps=2.0), models=models)
    df = store.query_df("SELECT t, x1, yaw, attention FROM observations WHERE lecture_id = ?", [result.lecture_id])
    fourth = df[df["x1"] > 960]
    before, after = fourth[fourth["t"] < 2.9], fourth[fourth["t"] > 3.1]
    assert len(before) >= 4 and len(after) >= 4
    assert after["attention"].mean() < before["attention"].mean() - 0.3
    others = df[df["x1"] < 960]
    assert others["attention"].mean() > after["attention"].mean() + 0.3
