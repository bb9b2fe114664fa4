"""core.store: schema versions, rows in and out, the summaries and report input string they give."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from core import metrics
from core.faces import EMOTIONS, FaceObservation
from core.report import build_facts, input_string
from core.store import SCHEMA_VERSION, Store
from core.vision.records import StudentObservation


def test_new_database_is_at_the_current_schema(tmp_path):
    store = Store(tmp_path / "x.duckdb")
    assert store.schema_version() == SCHEMA_VERSION
    Store(tmp_path / "x.duckdb")  # opening again is a no-op
    assert store.schema_version() == SCHEMA_VERSION


def test_version_1_database_is_migrated_keeping_its_rows(tmp_path):
    from core.store import MIGRATIONS

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(MIGRATIONS[0])
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (1)")
    con.execute(
        "INSERT INTO lectures (file_name, sample_fps, settings, status) VALUES ('old.mp4', 2, '{}', 'complete')"
    )
    con.close()
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.list_lectures()["file_name"].tolist() == ["old.mp4"]
    assert store.query_df("SELECT count(*) AS n FROM roster_embeddings")["n"][0] == 0


def _face(t: float, track: int, emotion: str, conf: float) -> FaceObservation:
    probs = np.full(7, (1 - conf) / 6, dtype=np.float32)
    probs[EMOTIONS.index(emotion)] = conf
    return FaceObservation(int(t * 2), t, (0, 0, 10, 10), 0.99, track_id=track, emotion_probs=probs)


def test_summaries_and_report_input(tmp_path):
    store = Store(tmp_path / "x.duckdb")
    lid = store.create_lecture("a.mp4", "abc", settings_key="{}", sample_fps=2.0)
    # Student 1: 8 happy samples (4 s) at 0.8 and 2 sad at 0.6; Student 2: 4 neutral at 0.5.
    faces = [_face(i / 2, 1, "happy", 0.8) for i in range(8)] + [_face(4 + i / 2, 1, "sad", 0.6) for i in range(2)]
    faces += [_face(i / 2, 2, "neutral", 0.5) for i in range(4)]
    store.append(lid, students_of(faces), progress_t=5.0, frames_sampled=10, new_students={1: 0.0, 2: 0.0})
    text = input_string(build_facts(store, lid))
    assert text == (
        f"Student 1: presence=1.00; happy=0.80 ({8 / 2 / 60:.2f}min); sad=0.60 ({2 / 2 / 60:.2f}min) | "
        f"Student 2: presence=0.40; neutral=0.50 ({4 / 2 / 60:.2f}min)"
    )
    summary = metrics.for_lecture(store, lid).students.set_index("student")
    assert summary.loc["Student 1", "happy_share"] == pytest.approx(0.8)
    assert summary.loc["Student 1", "happy_minutes"] == pytest.approx(4 / 60)
    assert summary.loc["Student 2", "neutral_confidence"] == pytest.approx(0.5)


def test_duplicate_rows_are_ignored(tmp_path):
    store = Store(tmp_path / "x.duckdb")
    lid = store.create_lecture("a.mp4", "abc", settings_key="{}", sample_fps=2.0)
    faces = [_face(0.0, 1, "happy", 0.9)]
    store.append(lid, students_of(faces), progress_t=0.0, frames_sampled=1, new_students={1: 0.0})
    store.append(lid, students_of(faces), progress_t=0.0, frames_sampled=1, new_students={1: 0.0})
    assert store.count_observations(lid) == 1 and store.count_students(lid) == 1


def test_attention_only_rows_have_null_emotions(tmp_path):
    store = Store(tmp_path / "x.duckdb")
    lid = store.create_lecture("a.mp4", "abc", settings_key="{}", sample_fps=2.0)
    store.append(
        lid,
        students_of([FaceObservation(0, 0.0, (0, 0, 5, 5), 0.95, track_id=1)]),
        progress_t=0,
        frames_sampled=1,
        new_students={1: 0.0},
    )
    row = store.query_df("SELECT p_happy, dominant_emotion FROM observations")
    assert row["p_happy"].isna().all() and row["dominant_emotion"].isna().all()
    assert input_string(build_facts(store, lid)) == "Student 1: presence=1.00"


def test_delete_lecture_removes_everything(analysed_db, tmp_path):
    store = Store(tmp_path / "x.duckdb")
    lid = store.create_lecture("a.mp4", "abc", settings_key="{}", sample_fps=2.0)
    store.append(lid, students_of([_face(0.0, 1, "happy", 0.9)]), progress_t=0, frames_sampled=1, new_students={1: 0.0})
    store.delete_lecture(lid)
    for table in ("lectures", "students", "observations"):
        assert store.query_df(f"SELECT count(*) AS n FROM {table}")["n"][0] == 0


def test_report_input_of_a_real_analysis_matches_the_metrics(analysed_db):
    store, result = analysed_db
    text = input_string(build_facts(store, result.lecture_id))
    m = metrics.for_lecture(store, result.lecture_id)
    assert text.startswith("Student 1: presence=1.00; engagement=")
    for r in m.emotions.itertuples():
        assert f"{r.emotion}={r.mean_confidence:.2f} ({r.minutes:.2f}min)" in text
    assert m.emotions["minutes"].sum() == pytest.approx(20 / 1 / 60)  # 20 samples at 1 fps


def students_of(faces: list[FaceObservation]) -> list[StudentObservation]:
    """Face rows as present students known by their face (rows as a face-only stage wrote them)."""
    return [StudentObservation.from_face(f) for f in faces]
