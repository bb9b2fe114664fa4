"""core.live: the frame callback called directly with real frames, the worker, and the live lecture."""

from __future__ import annotations

import time

import av
import numpy as np
import pandas as pd
import pytest

from core.live import LiveAnalyser, LiveLecture, draw_students
from core.settings import Settings
from core.store import Store
from core.video import sample_frames
from tests.conftest import fixture


@pytest.fixture(scope="module")
def face_frames():
    """12 real frames (one face) of the fixture clip, 4 per second of video."""
    return [f.rgb for f in sample_frames(fixture("WolfgangLanger_Pexels.mp4"), 4.0)][:12]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_callback_returns_the_frame_with_boxes_and_models_keep_the_rate(models, face_frames):
    clock = Clock()
    live = LiveAnalyser(models, Settings(fps=2.0), clock=clock)
    analysed = []
    for i, rgb in enumerate(face_frames):
        clock.t = 100.0 + i * 0.25  # camera at 4 frames/s, models at most 2/s
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = i
        out = live.recv(frame)
        assert out.width == frame.width and out.height == frame.height and out.pts == i
        analysed.append(live.step())
    assert analysed == [i % 2 == 0 for i in range(12)]
    students, new_students, last_t, n = live.drain()
    assert n == 6 and last_t == pytest.approx(2.5)
    assert len(students) == 6 and {s.track_id for s in students} == {1} and new_students == {1: 0.0}
    assert all(s.present and s.face is not None for s in students)
    assert all(s.face.emotion_probs is not None and s.face.yaw is not None for s in students)
    assert [s.t for s in students] == pytest.approx([0, 0.5, 1.0, 1.5, 2.0, 2.5])
    # the last frame returned carries the drawn box: it differs from the input
    out = live.recv(av.VideoFrame.from_ndarray(face_frames[-1], format="rgb24")).to_ndarray(format="rgb24")
    assert not np.array_equal(out, face_frames[-1])
    assert live.drain()[0] == []  # drained once


def test_latest_frame_wins(models, face_frames):
    clock = Clock()
    live = LiveAnalyser(models, Settings(fps=2.0), clock=clock)
    for i, rgb in enumerate(face_frames[:5]):
        clock.t = 100.0 + i * 0.25
        live.recv(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
    assert live.step()  # only the newest of the 5 frames is analysed
    assert not live.step()
    students, *_ = live.drain()
    assert [s.frame_index for s in students] == [4]


def test_attention_only_runs_no_emotion_model(face_frames):
    from core.pipeline import load_models

    settings = Settings(attention_only=True, identify=False, pose=False)
    live = LiveAnalyser(load_models(settings), settings)
    live.recv(av.VideoFrame.from_ndarray(face_frames[0], format="rgb24"))
    assert live.step()
    students, *_ = live.drain()
    assert len(students) == 1 and students[0].face is not None and students[0].face.emotion_probs is None


def test_worker_thread_and_live_lecture_reach_duckdb(tmp_path, models, face_frames):
    store = Store(tmp_path / "live.duckdb")
    settings = Settings(fps=4.0)
    live = LiveAnalyser(models, settings)
    lecture = LiveLecture(store, settings)
    live.start()
    deadline = time.monotonic() + 60
    i = 0
    while live.stats.frames_analysed < 4 and time.monotonic() < deadline:
        live.recv(av.VideoFrame.from_ndarray(face_frames[i % len(face_frames)], format="rgb24"))
        i += 1
        time.sleep(0.05)
        lecture.flush(live)
    assert live.stats.frames_analysed >= 4 and live.stats.last_error is None
    assert lecture.close(live) == "complete"
    row = store.query_df("SELECT * FROM lectures WHERE lecture_id = ?", [lecture.lecture_id]).iloc[0]
    assert row["source"] == "live" and row["status"] == "complete" and row["duration_s"] > 0
    n = store.count_observations(lecture.lecture_id)
    assert n == lecture.observations >= 4
    att = store.query_df("SELECT count(attention) AS n FROM observations WHERE lecture_id = ?", [lecture.lecture_id])
    assert att["n"][0] == n  # attention computed when the lecture closed
    assert store.list_lectures()["students"].tolist() == [1]
    assert lecture.close(live) == "closed"


def test_a_camera_without_faces_closes_as_no_faces(tmp_path, models):
    store = Store(tmp_path / "live.duckdb")
    live = LiveAnalyser(models, Settings())
    lecture = LiveLecture(store, Settings())
    live.recv(av.VideoFrame.from_ndarray(np.full((240, 320, 3), 90, np.uint8), format="rgb24"))
    assert live.step()
    lecture.flush(live)
    assert lecture.close(live) == "no_faces"


def test_draw_students_labels():
    from core.faces import FaceObservation
    from core.vision.records import StudentObservation

    rgb = np.zeros((100, 100, 3), np.uint8)
    face = FaceObservation(0, 0.0, (30, 20, 50, 45), 0.99, track_id=3)
    student = StudentObservation(0, 0.0, track_id=3, box=(10, 10, 90, 95), person_score=0.9, face=face)
    out = draw_students(rgb, [student], {3: "Student 1"})
    assert out[30:90, 10].any() and out[25:40, 30].any() and not rgb.any()


def test_live_and_file_paths_give_the_same_rows(tmp_path, models):
    """One frame analyser: the camera path and the file pipeline store the same rows for the same
    frames (sampled at 1/s from a real clip with 2-5 students)."""
    from core.pipeline import analyze
    from core.store import OBSERVATION_COLUMNS

    clip = fixture("short_hamilton_clip.mp4")
    settings = Settings(identify=False)
    file_store = Store(tmp_path / "file.duckdb")
    result = analyze(clip, file_store, settings, models=models)
    live_store = Store(tmp_path / "live.duckdb")
    clock = Clock()
    live = LiveAnalyser(models, settings, clock=clock)
    lecture = LiveLecture(live_store, settings)
    for f in sample_frames(clip, settings.fps):
        clock.t = 100.0 + f.t
        live._latest = (f.rgb, f.index, f.t)  # the exact frame the file path sampled
        live._last_sample_t = -1e9
        assert live.step()
    lecture.flush(live)
    cols = [c for c in OBSERVATION_COLUMNS if c not in ("lecture_id", "attention")]
    order = "ORDER BY frame_index, student_id"
    a = file_store.query_df(
        f"SELECT {', '.join(cols)} FROM observations WHERE lecture_id = ? {order}", [result.lecture_id]
    )
    b = live_store.query_df(
        f"SELECT {', '.join(cols)} FROM observations WHERE lecture_id = ? {order}", [lecture.lecture_id]
    )
    # The file path drops pictures and detector noise when it finishes; compare before that.
    kept = set(a["student_id"])
    b = b[b["student_id"].isin(kept)].reset_index(drop=True)
    assert len(a) >= 10 and a["present"].sum() >= 10
    pd.testing.assert_frame_equal(a.drop(columns=["t"]), b.drop(columns=["t"]), check_dtype=False, atol=1e-4)


def test_a_live_lecture_left_without_stop_is_closed_and_kept(tmp_path, models, face_frames):
    """The teacher closes the tab mid-lecture: once its heartbeat is stale, the next listing
    closes the lecture with what was saved, attention computed, and a warning."""
    from core.live import finish_abandoned_live_lectures

    store = Store(tmp_path / "live.duckdb")
    settings = Settings(fps=2.0)
    clock = Clock()
    live = LiveAnalyser(models, settings, clock=clock)
    lecture = LiveLecture(store, settings)
    for rgb in face_frames[:4]:
        clock.t += 0.5
        live.recv(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
        live.step()
    assert lecture.flush(live) >= 3
    other = LiveLecture(store, settings)  # a session still going in another tab
    other.flush(live)  # nothing new: only its heartbeat
    assert finish_abandoned_live_lectures(store) == []  # both heartbeats are fresh
    with store.transaction() as con:
        con.execute(
            "UPDATE lectures SET heartbeat_at = current_timestamp::TIMESTAMP - INTERVAL 5 MINUTE WHERE lecture_id = ?",
            [lecture.lecture_id],
        )
    assert finish_abandoned_live_lectures(store) == [lecture.lecture_id]
    row = store.lecture(lecture.lecture_id)
    assert row.status == "complete" and any("without STOP" in w for w in row.warnings)
    att = store.query_df("SELECT count(attention) AS n, count(*) AS rows FROM observations WHERE lecture_id = ?",
                         [lecture.lecture_id])  # fmt: skip
    assert att["n"][0] == att["rows"][0] >= 3
    assert store.lecture(other.lecture_id).status == "running"
