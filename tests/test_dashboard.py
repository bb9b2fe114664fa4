"""core.dashboard: cards match SQL, per-student bins count absence as 0, bands, low periods, drilldown."""

from __future__ import annotations

import numpy as np
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


def test_cards_on_the_real_lecture(analysed_db):
    store, result = analysed_db
    lid = result.lecture_id
    cards = dashboard.build(store, lid).cards
    row = store.query_df(
        "SELECT avg(p_happy) h, avg(dominant_conf) c, avg(p_fear) a, avg(attention) e FROM observations "
        "WHERE lecture_id = ?",
        [lid],
    ).iloc[0]
    assert cards.students == result.students == 1
    assert cards.happiness == pytest.approx(row["h"]) and cards.confidence == pytest.approx(row["c"])
    assert cards.anxiety == pytest.approx(row["a"])
    # v3 rows are all present moments with attention judged: engagement is the plain mean.
    assert cards.attention_measured and cards.engagement == pytest.approx(row["e"]) and cards.presence == 1.0


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


def test_absent_moments_are_not_visible_not_zero(small_lecture):
    store, lid = small_lecture
    f = dashboard.build(store, lid)
    per = f.per_student_bin.set_index(["student", "bin"])
    assert per.loc[("Student 1", 0), "engagement"] == 1.0 and per.loc[("Student 1", 9), "engagement"] == 0.0
    assert per.loc[("Student 2", 0), "engagement"] == 1.0
    assert np.isnan(per.loc[("Student 2", 5), "engagement"]) and per.loc[("Student 2", 5), "presence"] == 0.0
    table = f.table.set_index("student")
    assert table.loc["Student 1", "engagement"] == pytest.approx(0.5)
    assert table.loc["Student 2", "engagement"] == pytest.approx(1.0)  # seen 2 s, attentive then
    assert table.loc["Student 2", "presence"] == pytest.approx(0.2)
    assert f.cards.engagement == pytest.approx(14 / 24) and f.cards.presence == pytest.approx(0.6)
    assert f.timeline.set_index("bin").loc[0, "mean"] == 1.0


def test_without_attention_engagement_is_unknown_and_presence_stays(tmp_path):
    store = Store(tmp_path / "x.duckdb")
    lid = store.create_lecture("a.mp4", "abc", settings_key="{}", sample_fps=2.0, duration_s=4.0)
    store.append(
        lid, students_of([_face(i / 2, 1) for i in range(4)]), progress_t=1.5, frames_sampled=8, new_students={1: 0.0}
    )
    cards = dashboard.build(store, lid).cards
    assert not cards.attention_measured and cards.engagement is None
    assert cards.presence == pytest.approx(0.5)  # in view for 4 of 8 sampled moments


def test_drilldown_of_one_student(small_lecture):
    store, lid = small_lecture
    s = dashboard.student_frames(store, lid, 1)
    assert s.label == "Student 1" and s.engagement == pytest.approx(0.5) and s.presence == 1.0
    assert s.minutes_present == pytest.approx(10 / 60)
    assert s.low_periods.to_dict("records") == [{"start_s": 5.0, "end_s": 10.0, "engagement": 0.0}]
    assert s.emotion_minutes["emotion"].tolist() == ["happy"]
    assert len(s.strongest) == 4 and (s.strongest["emotion"] == "happy").all()
    assert np.diff(np.sort(s.strongest["t"].to_numpy())).min() >= 2.0
    with pytest.raises(KeyError):
        dashboard.student_frames(store, lid, 99)


def test_attention_only_drilldown_has_no_emotion(small_lecture):
    store, lid = small_lecture
    s = dashboard.student_frames(store, lid, 1, attention_only=True)
    assert s.emotions.empty and s.emotion_minutes.empty and s.strongest.empty
    f = dashboard.build(store, lid, attention_only=True)
    assert not f.has_emotions and f.cards.happiness is None and f.emotions_over_time.empty and f.positive.empty


def students_of(faces: list[FaceObservation]) -> list[StudentObservation]:
    """Face rows as present students known by their face (rows as a face-only stage wrote them)."""
    return [StudentObservation.from_face(f) for f in faces]


def test_student_body_sentence_in_words():
    import pandas as pd

    from core.dashboard import StudentFrames

    empty = pd.DataFrame()
    s = StudentFrames(1, "Student 1", 1.0, 0.8, 1.0, empty, empty, empty, empty, empty,
                      body={"face_visible_share": 0.75, "head_down_share": 1 / 3, "hand_raised_moments": 1,
                            "posture": "upright"})  # fmt: skip
    assert s.body_sentence() == (
        "Face visible 75% of the time in view · head down 33% · hand raised at 1 moment · usually upright"
    )
    unknown = StudentFrames(1, "Student 1", 1.0, 0.8, 1.0, empty, empty, empty, empty, empty,
                            body={"face_visible_share": 1.0, "head_down_share": float("nan"),
                                  "hand_raised_moments": 0, "posture": None})  # fmt: skip
    assert unknown.body_sentence() == "Face visible 100% of the time in view · hand never raised"
