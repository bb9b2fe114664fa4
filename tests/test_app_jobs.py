"""app.jobs: background analyses in threads; two at once (two tabs) both finish, DB consistent."""

from __future__ import annotations

import threading

import pytest

from app.jobs import JobRegistry
from core.errors import UnreadableVideo
from core.pipeline import AnalysisResult, analyze
from core.settings import Settings
from core.store import Store
from tests.conftest import fixture


def _result(status: str = "complete") -> AnalysisResult:
    return AnalysisResult(1, status, 1, 10, 10, 0.1)


def test_progress_eta_and_cleanup():
    registry = JobRegistry()
    release, cleaned = threading.Event(), threading.Event()

    def run(progress, cancel):
        progress(0.5, "half way")
        release.wait(5)
        return _result()

    job = registry.submit("a.mp4", run, cleanup=cleaned.set)
    for _ in range(50):
        if job.fraction == 0.5:
            break
        threading.Event().wait(0.02)
    assert job.active and job.message == "half way" and job.eta() is not None
    assert registry.active() == [job]
    release.set()
    registry.wait(job.job_id, 5)
    assert job.status == "done" and job.fraction == 1.0 and job.eta() is None and cleaned.is_set()


@pytest.mark.parametrize(
    ("outcome", "status", "error"),
    [
        (UnreadableVideo("notes.mp4 is not a video."), "failed", "notes.mp4 is not a video."),
        (RuntimeError("boom"), "failed", "The analysis stopped unexpectedly (RuntimeError: boom)."),
        (_result("interrupted"), "cancelled", None),
    ],
)
def test_failures_and_cancel_become_messages(outcome, status, error):
    registry = JobRegistry()

    def run(progress, cancel):
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    job = registry.wait(registry.submit("x", run).job_id, 5)
    assert job is not None and job.status == status and job.error == error


def test_two_tabs_analysing_two_lectures_both_finish(tmp_path, models):
    store = Store(tmp_path / "two.duckdb")
    registry = JobRegistry()

    def runner(video):
        return lambda progress, cancel: analyze(
            video, store, Settings(), models=models, progress=progress, cancel=cancel
        )

    a = registry.submit("a", runner(fixture("face_noface.mov")))
    b = registry.submit("b", runner(fixture("no_face.mp4")))
    for job in (a, b):
        registry.wait(job.job_id, 240)
    assert (a.status, b.status) == ("done", "done"), (a.error, b.error)
    assert a.result.status == "complete" and b.result.status == "no_faces"
    lectures = store.list_lectures().set_index("file_name")
    assert lectures.loc["face_noface.mov", "students"] == 1 and lectures.loc["no_face.mp4", "students"] == 0
    assert store.count_observations(a.result.lecture_id) == a.result.observations > 0
    assert store.count_observations(b.result.lecture_id) == 0
