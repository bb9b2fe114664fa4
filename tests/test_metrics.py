"""core.metrics: each figure on a hand-computed observations table, and one figure everywhere:
dashboard, students.csv, the JSON export and the report facts agree on a real analysed clip."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from core import dashboard, exports, metrics
from core.faces import EMOTIONS
from core.report import build_facts, input_string
from tests.conftest import fixture

NAN = np.nan


def _row(sid, t, present, attention, eyes=NAN, emotion=None, conf=NAN):
    """One observation; an emotion reading puts `conf` on it and the rest on neutral."""
    r = {"student_id": sid, "t": float(t), "frame_index": int(t), "present": present, "attention": attention,
         "eyes_open": eyes, "dominant_emotion": emotion, "dominant_conf": conf}  # fmt: skip
    for e in EMOTIONS:
        r[f"p_{e}"] = NAN if emotion is None else 0.0
    if emotion is not None:
        r[f"p_{emotion}"] = conf
        r["p_neutral"] = r["p_neutral"] + (1 - conf) if emotion != "neutral" else conf
    return r


# 10 s at 1 moment a second, 10 sampled moments.
# Student 1 (from 0 s): 0-3 s present, attention 0.8, eyes open, happy 0.9; 4 s present but attention
# not judged (face hidden); 5 s absent (present false); 6 s an old row (present NULL), attention 0.2,
# eyes closed, sad 0.6; 7-8 s the same with present true; 9 s attention 0.6, eyes open, neutral 1.0.
# Student 2 (from 5 s): 5 s attention 1.0 happy 0.7; 6 s absent; 7 s attention 0.4 happy 0.7;
# 8 s present, attention NULL, no face; 9 s absent.
ROWS = [
    *[_row(1, t, True, 0.8, 0.9, "happy", 0.9) for t in range(4)],
    _row(1, 4, True, NAN),
    _row(1, 5, False, NAN),
    _row(1, 6, None, 0.2, 0.1, "sad", 0.6),
    _row(1, 7, True, 0.2, 0.1, "sad", 0.6),
    _row(1, 8, True, 0.2, 0.1, "sad", 0.6),
    _row(1, 9, True, 0.6, 0.9, "neutral", 1.0),
    _row(2, 5, True, 1.0, 1.0, "happy", 0.7),
    _row(2, 6, False, NAN),
    _row(2, 7, True, 0.4, 1.0, "happy", 0.7),
    _row(2, 8, True, NAN),
    _row(2, 9, False, NAN),
]
LECTURE = pd.Series(
    {"lecture_id": 7, "file_name": "hand.mp4", "sample_fps": 1.0, "duration_s": 10.0, "frames_sampled": 10,
     "settings": "{}", "created_at": pd.Timestamp("2026-01-05 09:00")}
)  # fmt: skip
STUDENTS = pd.DataFrame({"student_id": [1, 2], "student": ["Student 1", "Student 2"], "first_t": [0.0, 5.0]})


@pytest.fixture(scope="module")
def obs() -> pd.DataFrame:
    df = pd.DataFrame(ROWS)
    df["present"] = df["present"].astype("boolean")
    return df


@pytest.fixture(scope="module")
def m(obs) -> metrics.LectureMetrics:
    return metrics.compute(LECTURE, obs, STUDENTS)


def test_presence(obs, m):
    # Student 1: 9 of 10 moments (the NULL row counts as present); Student 2: 3 of 10.
    assert metrics.presence(obs, 10).to_dict() == pytest.approx({1: 0.9, 2: 0.3})
    assert m.students["presence"].tolist() == pytest.approx([0.9, 0.3])
    assert m.presence == pytest.approx(0.6)
    assert m.moments == 10


def test_engagement(obs, m):
    # Judged moments only: (4 x 0.8 + 3 x 0.2 + 0.6) / 8 and (1.0 + 0.4) / 2; NULL and absent left out.
    assert metrics.engagement(obs).to_dict() == pytest.approx({1: 0.55, 2: 0.7})
    assert m.engagement == pytest.approx((4.4 + 1.4) / 10)
    assert metrics.halves(obs[obs["student_id"] == 1], 10.0) == pytest.approx((0.8, 0.3))


def test_emotion_shares_and_minutes(obs):
    t = metrics.emotion_table(obs, 1.0).set_index(["student_id", "emotion"])
    assert t.loc[(1, "happy"), "share"] == pytest.approx(0.5) and t.loc[(1, "sad"), "share"] == pytest.approx(0.375)
    assert t.loc[(1, "happy"), "minutes"] == pytest.approx(4 / 60)
    assert t.loc[(1, "happy"), "mean_confidence"] == pytest.approx(0.9)
    assert t.loc[(2, "happy"), "share"] == 1.0
    shares = metrics.class_emotion_shares(obs).set_index("emotion")["share"]
    assert shares.to_dict() == pytest.approx({"happy": 0.6, "sad": 0.3, "neutral": 0.1})


def test_low_and_high_engagement_periods(m):
    # Student 1's bins: 0.8 x 4, not judged, absent, 0.2 x 3, 0.6 -> one low run 6-9 s.
    assert m.bin_s == 1.0
    assert m.low_periods(1) == (metrics.Period(6.0, 9.0, pytest.approx(0.2), before=pytest.approx(0.8)),)
    assert m.high_periods(1) == ()
    # Class bins 6, 7, 8: 0.2, mean(0.2, 0.4) = 0.3, 0.2; before: bins 3 and 5 (bin 4 nobody judged).
    low = m.low_periods()
    assert [(p.start_s, p.end_s) for p in low] == [(6.0, 9.0)]
    assert low[0].engagement == pytest.approx(0.7 / 3) and low[0].before == pytest.approx(0.9)
    assert [(p.start_s, p.end_s) for p in m.high_periods()] == [(5.0, 6.0)]


def test_eye_closure(obs):
    eyes = metrics.eye_closure(obs, 1.0)
    # Student 1: 3 closed of 8 eye readings, one run 6-8 s = 3 s; Student 2: never closed.
    assert eyes.loc[1].tolist() == pytest.approx([0.375, 3.0])
    assert eyes.loc[2].tolist() == pytest.approx([0.0, 0.0])


def test_positive_emotion_index(obs):
    # Readings: 4 x (0.9) + 3 x (-0.6) + 1 x 0 for Student 1, 2 x 0.7 for Student 2.
    assert metrics.positive_values(obs).mean() == pytest.approx(3.2 / 10)
    bins = metrics.positive_index_bins(obs, 5.0).set_index("bin")["index"]
    assert bins.to_dict() == pytest.approx({0: 0.9, 1: (0.7 - 1.8 + 0.7 + 0.0) / 6})


@pytest.mark.parametrize(
    ("duration", "fps", "expected"),
    [(19.7, 1.0, 1.0), (9.0, 0.5, 2.0), (600.0, 1.0, 10.0), (3600.0, 1.0, 60.0), (0.0, 1.0, 1.0), (7200, 1, 120)],
)
def test_time_bins(duration, fps, expected):
    assert metrics.bin_seconds(duration, fps) == expected


@pytest.mark.parametrize(
    ("values", "counts"),
    [([0.0, 0.19, 0.2, 0.99, 1.0], [2, 1, 0, 0, 2]), ([], [0, 0, 0, 0, 0]), ([0.5, 0.61, NAN], [0, 0, 1, 1, 0])],
)
def test_engagement_bands(values, counts):
    assert metrics.performance_bands(pd.Series(values, dtype=float))["students"].tolist() == counts


def test_per_bin_presence_and_not_visible(m):
    per = m.per_student_bin.set_index(["student_id", "bin"])
    assert per.loc[(1, 4), "presence"] == 1.0 and np.isnan(per.loc[(1, 4), "engagement"])  # present, not judged
    assert per.loc[(1, 5), "presence"] == 0.0 and np.isnan(per.loc[(1, 5), "engagement"])  # absent
    assert per.loc[(2, 0), "presence"] == 0.0  # before Student 2 appeared


def test_students_csv_columns_and_attention_only(obs):
    out = metrics.students_export(metrics.compute(LECTURE, obs, STUDENTS)).set_index("student")
    assert out.loc["Student 1", ["presence", "engagement"]].tolist() == pytest.approx([0.9, 0.55])
    assert out.loc["Student 2", "sad_share"] == 0.0  # readings, never sad: 0
    assert out.loc["Student 1", "engagement_minute_1"] == pytest.approx(0.55)
    quiet = metrics.students_export(metrics.compute(LECTURE, obs, STUDENTS, attention_only=True))
    emo_cols = [c for c in quiet.columns if c.split("_")[0] in EMOTIONS]
    assert len(emo_cols) == 21 and quiet[emo_cols].isna().all().all()  # empty, not 0
    assert quiet["engagement"].tolist() == pytest.approx([0.55, 0.7])


# -- one number everywhere, on a real clip ------------------------------------------------------------


@pytest.fixture(scope="module")
def hamilton(tmp_path_factory, models):
    from core.pipeline import analyze
    from core.settings import Settings
    from core.store import Store

    store = Store(tmp_path_factory.mktemp("metrics") / "h.duckdb")
    result = analyze(fixture("short_hamilton_clip.mp4"), store, Settings(), models=models)
    return store, result.lecture_id


@pytest.mark.parametrize("attention_only", [False, True])
def test_dashboard_csv_json_and_report_agree_for_every_student(hamilton, attention_only):
    store, lid = hamilton
    frames = dashboard.build(store, lid, attention_only=attention_only)
    csv = pd.read_csv(io.StringIO(exports.students_csv(store, lid, attention_only=attention_only)))
    doc = json.loads(exports.emotions_json(store, lid, attention_only=attention_only))
    facts = build_facts(store, lid, attention_only=attention_only)
    text = input_string(facts)
    table = frames.table.set_index("student")
    assert len(table) >= 2 and len(csv) == len(table) == len(doc["students"]) == len(facts.students)
    for row, js, sf in zip(csv.itertuples(), doc["students"], facts.students, strict=True):
        assert row.student == js["student"] == sf.name
        for figure, fact in (("presence", sf.presence), ("engagement", sf.engagement)):
            dash = table.loc[row.student, figure]
            assert dash == pytest.approx(getattr(row, figure), abs=1e-4)
            assert dash == pytest.approx(js[figure], abs=1e-4)
            assert dash == pytest.approx(fact, abs=1e-9)
            assert f"{figure}={dash:.2f}" in text.split(" | ")[facts.names.index(sf.name)]
    assert frames.cards.engagement == pytest.approx(facts.engagement)
    assert frames.cards.presence == pytest.approx(facts.presence)


def test_body_state_per_student_on_a_hand_computed_table():
    """Over present moments only; unknown (NULL) head state and posture left out, never 'no'."""
    cols = ["student_id", "present", "face_visible", "head_down", "hand_raised", "posture"]
    rows = pd.DataFrame(
        [
            # student 1: 4 present moments (face 3 of 4; head down 1 of the 3 known; hand up once;
            # postures upright, upright, leaning), then an absent moment whose values must not count
            (1, True, True, False, False, "upright"),
            (1, True, True, True, True, "upright"),
            (1, True, False, None, None, None),
            (1, True, True, False, False, "leaning"),
            (1, False, False, True, True, "slumped"),
            # student 2: an old face row (schema 3: NULL state): face visible, body unknown
            (2, None, None, None, None, None),
        ],
        columns=cols,
    )
    b = metrics.body_state(rows)
    assert b.loc[1, "face_visible_share"] == pytest.approx(3 / 4)
    assert b.loc[1, "head_down_share"] == pytest.approx(1 / 3)
    assert b.loc[1, "hand_raised_moments"] == 1 and b.loc[1, "posture"] == "upright"
    assert b.loc[2, "face_visible_share"] == 1.0 and np.isnan(b.loc[2, "head_down_share"])
    assert b.loc[2, "hand_raised_moments"] == 0 and pd.isna(b.loc[2, "posture"])


def test_body_state_reaches_students_csv_of_a_real_clip(tmp_path, models):
    """A real classroom clip: every student has body state in students.csv and the dashboard table."""
    from core.pipeline import analyze
    from core.settings import Settings
    from core.store import Store

    store = Store(tmp_path / "c.duckdb")
    result = analyze(fixture("classroom.gif"), store, Settings(identify=False), models=models)
    m = metrics.for_lecture(store, result.lecture_id)
    csv = pd.read_csv(io.StringIO(exports.students_csv(store, result.lecture_id)))
    assert len(csv) == 4
    assert csv["face_visible_share"].between(0, 1).all() and csv["head_down_share"].notna().all()
    assert set(csv["posture"].dropna()) <= {"upright", "leaning", "slumped"} and csv["posture"].notna().all()
    table = dashboard.build(store, result.lecture_id).table
    assert table["head_down_share"].tolist() == pytest.approx(m.students["head_down_share"].tolist())
