"""core.dashboard: cards match SQL, per-student bins count absence as 0, bands, low periods, drilldown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import dashboard
from core.faces import EMOTIONS, FaceObservation
from core.store import Store
from core.vision.records import StudentObservation


def _face(
    t: float, track: int, emotion: str = "happy", conf: float = 0.8, attention: float | None = None
) -> FaceObservation:
    probs = np.full(7, (1 - conf) / 6, dtype=np.float32)
    probs[EMOTIONS.index(emotion)] = conf
    return FaceObservation(
        int(t * 2), t, (0, 0, 10, 10), 0.99, track_id=track, emotion_probs=probs, attention=attention
    )


@pytest.fixture
def small_lecture(tmp_path):
    """10 s at 2 samples/s: student 1 present all the time (attention 1.0 then 0.0 from 5 s),
    student 2 present only for the first 2 s, sad."""
    store = Store(tmp_path / "x.duckdb")
    lid = store.create_lecture("a.mp4", "abc", settings_key="{}", sample_fps=2.0, duration_s=10.0)
    faces = [_face(i / 2, 1, "happy", 0.9, 1.0 if i < 10 else 0.0) for i in range(20)]
    faces += [_face(i / 2, 2, "sad", 0.6, 1.0) for i in range(4)]
    store.append(lid, students_of(faces), progress_t=9.5, frames_sampled=20, new_students={1: 0.0, 2: 0.0})
    return store, lid


def test_cards_match_sql_on_the_real_lecture(analysed_db):
    store, result = analysed_db
    lid = result.lecture_id
    cards = dashboard.cards(store, lid)
    row = store.query_df(
        "SELECT avg(p_happy) h, avg(dominant_conf) c, avg(p_fear) a FROM observations WHERE lecture_id = ?", [lid]
    ).iloc[0]
    assert cards.students == result.students == 1
    assert cards.happiness == pytest.approx(row["h"]) and cards.confidence == pytest.approx(row["c"])
    assert cards.anxiety == pytest.approx(row["a"])
    assert cards.attention_measured and 0 < cards.engagement <= 1


def test_build_on_the_real_lecture(analysed_db):
    store, result = analysed_db
    f = dashboard.build(store, result.lecture_id)
    assert f.bin_s == 1.0 and f.duration_s == pytest.approx(19.685, abs=0.01)
    assert len(f.table) == result.students
    assert len(f.per_student_bin) == result.students * 20
    assert f.has_emotions and set(f.emotions_over_time["emotion"]) == set(EMOTIONS)
    shares = f.emotions_over_time.groupby("bin")["share"].sum()
    assert np.allclose(shares, 1.0)
    assert f.bands["students"].sum() == result.students
    assert ((f.positive["index"] >= -1) & (f.positive["index"] <= 1)).all()


def test_absent_moments_count_as_zero(small_lecture):
    store, lid = small_lecture
    f = dashboard.build(store, lid)
    per = f.per_student_bin.set_index(["student", "bin"])["engagement"]
    assert per[("Student 1", 0)] == 1.0 and per[("Student 1", 9)] == 0.0
    assert per[("Student 2", 0)] == 1.0 and per[("Student 2", 5)] == 0.0  # gone after 2 s
    eng = f.table.set_index("student")["engagement"]
    assert eng["Student 1"] == pytest.approx(0.5) and eng["Student 2"] == pytest.approx(0.2)
    assert f.cards.engagement == pytest.approx(0.35)
    assert f.timeline.set_index("bin").loc[0, "mean"] == 1.0
    bands = f.bands.set_index("band")["students"]
    assert bands["40–60%"] == 1 and bands["20–40%"] == 1


def test_engagement_without_attention_is_face_presence(tmp_path):
    store = Store(tmp_path / "x.duckdb")
    lid = store.create_lecture("a.mp4", "abc", settings_key="{}", sample_fps=2.0, duration_s=4.0)
    rows = students_of([_face(i / 2, 1) for i in range(4)])
    store.append(lid, rows, progress_t=1.5, frames_sampled=4, new_students={1: 0.0})
    cards = dashboard.cards(store, lid)
    assert not cards.attention_measured
    assert cards.engagement == pytest.approx(0.5)  # face present for 2 of 4 seconds


def test_drilldown_of_one_student(small_lecture):
    store, lid = small_lecture
    s = dashboard.student_frames(store, lid, 1)
    assert s.label == "Student 1" and s.engagement == pytest.approx(0.5)
    assert s.minutes_seen == pytest.approx(10 / 60)
    assert s.low_periods.to_dict("records") == [{"start_s": 5.0, "end_s": 10.0, "engagement": 0.0}]
    assert s.emotion_minutes["emotion"].tolist() == ["happy"]
    assert len(s.strongest) == 4 and (s.strongest["emotion"] == "happy").all()
    assert np.diff(np.sort(s.strongest["t"].to_numpy())).min() >= 2.0
    with pytest.raises(KeyError):
        dashboard.student_frames(store, lid, 99)


@pytest.mark.parametrize(
    ("duration", "fps", "expected"),
    [(19.7, 2.0, 1.0), (9.0, 0.5, 2.0), (600.0, 2.0, 10.0), (3600.0, 2.0, 60.0), (0.0, 2.0, 1.0)],
)
def test_bin_seconds(duration, fps, expected):
    assert dashboard.bin_seconds(duration, fps) == expected


@pytest.mark.parametrize(
    ("values", "counts"),
    [([0.0, 0.19, 0.2, 0.99, 1.0], [2, 1, 0, 0, 2]), ([], [0, 0, 0, 0, 0]), ([0.5, 0.61], [0, 0, 1, 1, 0])],
)
def test_performance_bands(values, counts):
    assert dashboard.performance_bands(pd.Series(values, dtype=float))["students"].tolist() == counts


@pytest.mark.parametrize(
    ("engagement", "periods"),
    [([1, 1, 1], []), ([0, 0, 1, 0], [(0, 2), (3, 4)]), ([0.39, 0.4, 0.1], [(0, 1), (2, 3)])],
)
def test_low_periods(engagement, periods):
    tl = pd.DataFrame(
        {"bin": range(len(engagement)), "t_start": [float(i) for i in range(len(engagement))], "engagement": engagement}
    )
    got = dashboard.low_periods(tl, 1.0)
    assert list(zip(got["start_s"], got["end_s"], strict=True)) == periods


def students_of(faces: list[FaceObservation]) -> list[StudentObservation]:
    """Face rows as present students known by their face (rows as a face-only stage wrote them)."""
    return [StudentObservation.from_face(f) for f in faces]
