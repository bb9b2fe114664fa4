"""core.pipeline end to end on real media: students, tracks, statuses, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from core.errors import UnreadableVideo
from core.pipeline import analyze
from core.settings import Settings
from core.store import Store
from tests.conftest import ROOT, fixture


def test_one_face_video_gives_one_student(analysed_db):
    store, result = analysed_db
    assert result.status == "complete"
    assert result.students == 1
    assert result.observations == 20  # the student is in every one of the 20 sampled frames (1 fps)
    labels = store.query_df("SELECT label FROM students WHERE lecture_id = ?", [result.lecture_id])
    assert labels["label"].tolist() == ["Student 1"]


def test_observation_rows_are_complete(analysed_db):
    store, result = analysed_db
    df = store.query_df("SELECT * FROM observations WHERE lecture_id = ?", [result.lecture_id])
    assert df["present"].all() and df["face_visible"].all()  # a close-up: the face is always in view
    assert (df["sx2"] > df["sx1"]).all() and (df["person_score"] > 0.25).all()  # the student's box
    assert df["sx1"].le(df["x1"] + 1).all() and df["sx2"].ge(df["x2"] - 1).all()  # the face is inside it
    probs = df[[c for c in df.columns if c.startswith("p_")]].to_numpy(dtype=float)
    assert abs(probs.sum(axis=1) - 1).max() < 1e-4
    assert (df["det_score"] > 0.9).all()
    assert (df["x2"] > df["x1"]).all() and (df["y2"] > df["y1"]).all()
    assert df["frame_index"].is_unique


def test_same_file_again_reuses_the_lecture(analysed_db, models):
    store, first = analysed_db
    again = analyze(fixture("WolfgangLanger_Pexels.mp4"), store, Settings(), models=models)
    assert again.reused and again.lecture_id == first.lecture_id
    assert store.count_observations(first.lecture_id) == first.observations


def test_no_face_video_has_no_observations_and_says_so(tmp_path, models):
    store = Store(tmp_path / "db.duckdb")
    result = analyze(fixture("no_face.mp4"), store, Settings(), models=models)
    assert result.status == "no_faces"
    assert result.observations == 0 and result.students == 0
    assert any("No students found in no_face.mp4" in w for w in result.warnings)
    assert store.lecture(result.lecture_id).status == "no_faces"


def test_hevc_face_then_no_face(tmp_path, models):
    store = Store(tmp_path / "db.duckdb")
    result = analyze(fixture("face_noface.mov"), store, Settings(), models=models)
    df = store.query_df("SELECT t, present FROM observations WHERE lecture_id = ?", [result.lecture_id])
    assert result.students == 1
    # The person is there at the start and gone in the second half of the 6.4 s clip: absent
    # moments are rows with present = false (not missing rows, not zeros).
    here = df[df["present"]]
    assert here["t"].min() == 0.0
    assert here["t"].max() < 3.2
    assert 2 <= len(here) < result.frames_sampled == len(df)
    assert df[~df["present"]]["t"].min() > here["t"].max()


def test_still_image_is_a_one_frame_lecture_with_six_faces(tmp_path, models):
    store = Store(tmp_path / "db.duckdb")
    result = analyze(fixture("t1.jpg"), store, Settings(), models=models)
    assert result.frames_sampled == 1
    assert result.students == 6 and result.observations == 6


def test_truncated_copy_gives_partial_result_and_warning(tmp_path, models):
    data = fixture("WolfgangLanger_Pexels.mp4").read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])
    store = Store(tmp_path / "db.duckdb")
    result = analyze(half, store, Settings(), models=models)
    assert result.status == "complete"
    assert 5 < result.observations < 20
    assert any("truncated" in w for w in result.warnings)


def test_bad_file_creates_no_lecture(tmp_path, models):
    store = Store(tmp_path / "db.duckdb")
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(UnreadableVideo):
        analyze(bad, store, Settings(), models=models)
    assert store.list_lectures().empty


def test_cancel_then_rerun_resumes_without_duplicates(tmp_path, models, analysed_db):
    import threading

    _, clean = analysed_db
    store = Store(tmp_path / "db.duckdb")
    cancel = threading.Event()

    def progress(frac: float, msg: str) -> None:
        cancel.set()  # stop after the first committed batch

    small_batches = Settings(batch_frames=8)  # commits every 8 samples (not part of the analysis key)
    first = analyze(
        fixture("WolfgangLanger_Pexels.mp4"), store, small_batches, models=models, progress=progress, cancel=cancel
    )
    assert first.status == "interrupted" and 0 < first.observations < clean.observations
    second = analyze(fixture("WolfgangLanger_Pexels.mp4"), store, Settings(), models=models)
    assert second.lecture_id == first.lecture_id
    assert second.resumed_from_t is not None and second.resumed_from_t > 0
    assert second.status == "complete"
    assert second.observations == clean.observations
    assert second.students == 1


def test_process_killed_half_way_then_rerun_matches_a_clean_run(tmp_path, analysed_db):
    """A real SIGKILL of the CLI after its first commit; the rerun resumes to the same rows."""
    clean_store, clean = analysed_db
    db = tmp_path / "killed.duckdb"
    video = fixture("WolfgangLanger_Pexels.mp4")
    cmd = [sys.executable, "-m", "core", "analyze", str(video), "--db", str(db)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait for the first committed batch (its progress line) then kill without warning.
    deadline = time.monotonic() + 240
    buf = ""
    while time.monotonic() < deadline and "s analysed" not in buf:
        ch = proc.stderr.read(1)
        if not ch:
            break
        buf += ch
    assert "s analysed" in buf, buf[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    store = Store(db)
    partial = store.count_observations(1)
    assert 0 < partial < clean.observations
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    rows = store.query_df("SELECT student_id, frame_index FROM observations ORDER BY frame_index")
    ref = clean_store.query_df(
        "SELECT student_id, frame_index FROM observations WHERE lecture_id = ? ORDER BY frame_index",
        [clean.lecture_id],
    )
    assert len(rows) == len(ref) == clean.observations
    assert rows["frame_index"].tolist() == ref["frame_index"].tolist()
    assert store.count_students(1) == 1
