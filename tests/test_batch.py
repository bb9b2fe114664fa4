"""`python -m core batch` on a local Ray of 2 CPUs (started once for the module), real clips.

A batch of three real clips and one corrupt file, at 0.5 samples per second to keep it short,
checked against `core.pipeline.analyze` (the code path of `python -m core analyze`) on the same
files and settings; a rerun through the CLI; a worker killed mid-video; the archive in the app.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import ray
from streamlit.testing.v1 import AppTest

from core import privacy
from core.batch import expire_lectures, lecture_file, open_dir, run_batch, start_ray
from core.pipeline import analyze
from core.settings import Settings
from core.store import Store
from tests.conftest import ROOT, fixture

CLIPS = ("WolfgangLanger_Pexels.mp4", "short_hamilton_clip.mp4", "face_noface.mov")
SETTINGS = Settings(fps=0.5)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    started = start_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Three real clips in a nested folder and one corrupt file (a truncated real video)."""
    folder = tmp_path_factory.mktemp("clips")
    (folder / "term1").mkdir()
    for name in CLIPS:
        shutil.copy(fixture(name), folder / "term1" / name)
    (folder / "broken.mp4").write_bytes(fixture("no_face.mp4").read_bytes()[:5000])
    return folder


@pytest.fixture(scope="module")
def batch(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("archive")
    summary = run_batch([str(clips)], str(out), settings=SETTINGS, workers=2, show_progress=False)
    return out, summary


@pytest.fixture(scope="module")
def reference(clips, tmp_path_factory, models) -> Store:
    """The same files analysed one after another by core.pipeline.analyze into one database."""
    store = Store(tmp_path_factory.mktemp("ref") / "ref.duckdb")
    for name in CLIPS:
        analyze(clips / "term1" / name, store, SETTINGS, models=models)
    return store


def read(out: Path, table: str) -> pd.DataFrame:
    """Every Parquet file of one table, read by DuckDB (as the reference rows are)."""
    with duckdb.connect() as con:
        return con.execute("SELECT * FROM read_parquet(?, union_by_name = true)", [str(out / table / "*.parquet")]).df()


def test_three_clips_and_a_corrupt_file(batch, clips):
    out, summary = batch
    assert summary.as_json().keys() == {
        "lectures", "complete", "failed", "skipped", "observations", "video_hours", "seconds", "workers",
    }  # fmt: skip
    assert (summary.lectures, summary.complete, summary.failed, summary.skipped) == (4, 3, 1, 0)
    assert summary.workers == 2
    lectures = read(out, "lectures").set_index("file_name")
    assert sorted(lectures.index) == sorted([*CLIPS, "broken.mp4"])
    broken = lectures.loc["broken.mp4"]
    assert broken["status"] == "failed"
    assert "not a video" in broken["error"] and "\n" not in broken["error"]
    assert broken["path"] == str(clips / "broken.mp4")
    assert not (out / "observations" / f"lecture-{int(broken['lecture_id']):06d}.parquet").exists()
    done = lectures.drop(index="broken.mp4")
    assert set(done["status"]) == {"complete"}
    assert (done["analysis_s"] > 0).all() and done["batch_worker"].notna().all()
    # 4 lectures, 2 workers: a worker analyses several lectures with the models it loaded once
    assert lectures["batch_worker"].nunique() == 2
    assert summary.observations == len(read(out, "observations")) > 0
    assert summary.video_hours == pytest.approx(done["duration_s"].sum() / 3600)
    assert len(set(lectures["lecture_id"])) == 4


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> pd.DataFrame:
    """Rows as Python values (NULL -> None), so Parquet and DuckDB tables compare cell by cell."""
    df = con.execute(sql, params).df()
    return df.astype(object).where(df.notna(), None)


def test_parquet_rows_equal_core_analyze_rows(batch, reference):
    out, _ = batch
    lectures = read(out, "lectures").set_index("file_name")
    ref_lectures = reference.query_df("SELECT * FROM lectures").set_index("file_name")
    with duckdb.connect() as pq_con, reference.connect() as ref_con:
        for name in CLIPS:
            lid, ref_id = int(lectures.loc[name, "lecture_id"]), int(ref_lectures.loc[name, "lecture_id"])
            for col in ("sha256", "status", "frames_sampled", "duration_s", "settings", "front_yaw", "front_pitch"):
                assert lectures.loc[name, col] == ref_lectures.loc[name, col], (name, col)
            for table, order in (("observations", "student_id, frame_index"), ("students", "student_id")):
                path = lecture_file(str(out), table, lid)
                cols = "SELECT * EXCLUDE (lecture_id) FROM"
                got = _rows(pq_con, f"{cols} read_parquet(?) ORDER BY {order}", [path])
                want = _rows(ref_con, f"{cols} {table} WHERE lecture_id = ? ORDER BY {order}", [ref_id])
                assert list(got.columns) == list(want.columns)  # every column of the schema
                assert len(got) > 0, (name, table)
                pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_cli_rerun_skips_finished_lectures_and_retries_the_failed_one(batch, clips):
    out, _ = batch
    finished = sorted((out / "observations").glob("*.parquet"))
    mtimes = [p.stat().st_mtime_ns for p in finished]
    address = ray.get_runtime_context().gcs_address  # the module's Ray: --ray joins it, starts none
    proc = subprocess.run(
        [sys.executable, "-m", "core", "batch", str(clips), "--out", str(out), "--fps", "0.5", "--ray", address],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["lectures"] == 4 and result["skipped"] == 3
    assert result["failed"] == 1 and result["complete"] == 0 and result["observations"] == 0
    assert "failed: " in proc.stderr and "broken.mp4" in proc.stderr
    assert [p.stat().st_mtime_ns for p in finished] == mtimes  # finished lectures untouched
    assert len(read(out, "lectures")) == 4  # the retried failure replaced its own row


def test_attention_only_setting_of_the_archive_applies_to_the_batch(tmp_path):
    out = tmp_path / "archive"
    privacy.save_preferences(out / "archive.duckdb", privacy.Preferences(attention_only=True))
    address = ray.get_runtime_context().gcs_address
    video = fixture("WolfgangLanger_Pexels.mp4")
    proc = subprocess.run(
        [sys.executable, "-m", "core", "batch", str(video), "--out", str(out), "--fps", "0.5", "--ray", address],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["complete"] == 1
    obs = read(out, "observations")
    assert len(obs) > 0 and obs["p_happy"].isna().all() and obs["dominant_emotion"].isna().all()
    assert json.loads(read(out, "lectures")["settings"][0])["attention_only"] is True


def _worker_pids(title: str) -> list[int]:
    """Processes of this machine whose Ray process title is `title` (e.g. mid `analyse`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().split(b"\0")[0].decode() == title:
                    pids.append(int(entry.name))
            except (OSError, UnicodeDecodeError):
                continue
    return pids


def test_killed_worker_leaves_no_duplicate_rows(reference, tmp_path):
    out = tmp_path / "archive"
    video = fixture("WolfgangLanger_Pexels.mp4")
    box: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: box.update(summary=run_batch([str(video)], str(out), settings=SETTINGS, workers=1,
                                                     show_progress=False)),
    )  # fmt: skip
    thread.start()
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        pids = _worker_pids("ray::BatchWorker.analyse")
        if pids:
            time.sleep(0.1)  # the models were loaded in __init__: the video is under way
            if pids[0] in _worker_pids("ray::BatchWorker.analyse"):
                os.kill(pids[0], signal.SIGKILL)
                killed = pids[0]
        time.sleep(0.02)
    thread.join(timeout=300)
    assert killed is not None, "the worker finished before it could be killed"
    summary = box["summary"]
    assert (summary.complete, summary.failed) == (1, 0)
    (result,) = summary.results
    assert not result.worker.endswith(f":{killed}")  # the restarted worker did the lecture
    obs = read(out, "observations")
    assert lecture_file(str(out), "observations", result.lecture_id).endswith("lecture-000001.parquet")
    assert not obs.duplicated(["lecture_id", "student_id", "frame_index"]).any()
    assert len(read(out, "lectures")) == 1 and not list(out.glob("*/.*.tmp"))
    ref_id = int(reference.query_df("SELECT lecture_id FROM lectures WHERE file_name = ?", [video.name]).iloc[0, 0])
    want = reference.query_df(
        "SELECT student_id, frame_index FROM observations WHERE lecture_id = ? ORDER BY 1, 2", [ref_id]
    )
    got = obs[["student_id", "frame_index"]].sort_values(["student_id", "frame_index"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_retention_expires_old_lectures_and_a_rerun_keeps_them_deleted(batch, clips, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(batch[0], out)
    fs, root, _ = open_dir(str(out))
    expired = expire_lectures(fs, root, 30, now=datetime.now() + timedelta(days=31))
    assert len(expired) == 3  # the failed lecture holds no data and stays to be retried
    assert not list((out / "observations").glob("*.parquet")) and not list((out / "students").glob("*.parquet"))
    rows = read(out, "lectures")
    assert sorted(rows["status"]) == ["expired", "expired", "expired", "failed"]
    summary = run_batch([str(clips)], str(out), settings=SETTINGS, workers=1, show_progress=False)
    assert (summary.skipped, summary.failed, summary.complete) == (3, 1, 0)
    store = Store(out / "archive.duckdb")
    assert store.list_lectures()["file_name"].tolist() == ["broken.mp4"]
    assert store.query_df("SELECT count(*) AS n FROM observations")["n"][0] == 0


def test_archive_opens_read_only_in_the_app(batch, monkeypatch):
    out, _ = batch
    db = out / "archive.duckdb"
    store = Store(db)
    assert store.read_only
    lectures = store.list_lectures()
    assert len(lectures) == 4
    monkeypatch.setenv("CLASSLENS_DB", str(db))
    chosen = int(lectures.loc[lectures["file_name"] == "WolfgangLanger_Pexels.mp4", "lecture_id"].iloc[0])
    at = AppTest.from_file(str(ROOT / "pages" / "dashboard.py"), default_timeout=120)
    at.session_state["lecture_id"] = chosen
    at.run()
    assert not at.exception, at.exception
    students = store.count_students(chosen)
    cards = {m.label: m.value for m in at.metric}
    assert cards["Students"] == str(students) and students >= 1
    assert at.title[0].value == "Dashboard · WolfgangLanger_Pexels.mp4"
    assert len(at.get("plotly_chart")) >= 3
    home = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=120).run()
    assert not home.exception
    assert any("read-only archive" in i.value for i in home.info) and not home.get("file_uploader")
    monkeypatch.setenv("CLASSLENS_REPORT_WRITER", "rules")
    report = AppTest.from_file(str(ROOT / "pages" / "report.py"), default_timeout=120)
    report.session_state["lecture_id"] = chosen
    report.run()
    next(b for b in report.button if b.label == "Generate report").click().run()
    assert not report.exception, report.exception
    assert any("Not saved: this archive" in c.value for c in report.caption)
    shown = [m.value for m in report.markdown if "# Lecture report: WolfgangLanger_Pexels.mp4" in m.value]
    assert shown and shown[0].strip() == report.session_state["report"]["text"].strip()
    assert store.query_df("SELECT count(*) AS n FROM reports")["n"][0] == 0
    with pytest.raises(Exception, match="can be read, not changed"):
        store.delete_lecture(chosen)
