"""Background analysis jobs shared by every browser tab of one app process.

A job runs `core.pipeline.analyze` in its own thread so the page never freezes; the page polls
the job's progress. The registry is process-wide (held by `st.cache_resource` in
app/resources.py) and thread-safe, so two tabs analysing two lectures both finish; each tab
remembers only its job ids. At most one job runs per lecture key (the file's sha256 and the
analysis settings): a second request for a lecture being analysed gets the running job. The
store's claim guards the same lecture across processes. Streamlit is not imported here.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import ClassLensError
from core.pipeline import AnalysisResult, ProgressFn

log = logging.getLogger(__name__)

RunFn = Callable[[ProgressFn, threading.Event], AnalysisResult]


@dataclass
class Job:
    """One analysis in progress or finished.

    Attributes:
        status: queued | running | done | failed | cancelled.
        fraction: progress in [0, 1].
    """

    job_id: str
    name: str
    key: str | None = None
    started: float = field(default_factory=time.monotonic)
    status: str = "running"
    fraction: float = 0.0
    message: str = "reading the video…"
    result: AnalysisResult | None = None
    error: str | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        return self.status == "running"

    def elapsed(self, now: float | None = None) -> float:
        return (self.finished or now or time.monotonic()) - self.started

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left, extrapolated from the progress so far (None until 2% done)."""
        if not self.active or self.fraction < 0.02:
            return None
        el = self.elapsed(now)
        return max(0.0, el / self.fraction - el)


class JobRegistry:
    """Thread-safe registry of analysis jobs (one per process)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, name: str, run: RunFn, cleanup: Callable[[], None] | None = None) -> Job:
        """Start `run(progress, cancel)` in a daemon thread; `cleanup` runs when it ends."""
        return self.submit_once(None, name, run, cleanup)[0]

    def running(self, key: str) -> Job | None:
        """The active job of this lecture key, if any."""
        with self._lock:
            return next((j for j in self._jobs.values() if j.active and j.key == key), None)

    def submit_once(
        self, key: str | None, name: str, run: RunFn, cleanup: Callable[[], None] | None = None
    ) -> tuple[Job, bool]:
        """Start a job unless one with the same lecture `key` is running: (job, started).

        When a job of `key` is already running, nothing starts, `cleanup` runs at once (the new
        request's temporary file is not needed) and that running job is returned.
        """
        with self._lock:
            same = next((j for j in self._jobs.values() if j.active and key is not None and j.key == key), None)
            if same is None:
                job = Job(job_id=uuid.uuid4().hex[:12], name=name, key=key)
                self._jobs[job.job_id] = job
        if same is not None:
            if cleanup is not None:
                cleanup()
            return same, False

        def progress(frac: float, msg: str) -> None:
            job.fraction, job.message = float(min(1.0, max(0.0, frac))), msg

        def target() -> None:
            try:
                job.result = run(progress, job.cancel)
                job.status = "cancelled" if job.result.status == "interrupted" else "done"
                job.fraction = 1.0 if job.status == "done" else job.fraction
            except ClassLensError as exc:
                job.status, job.error = "failed", str(exc)
            except Exception as exc:  # a bug: the page shows a message, the log keeps the traceback
                log.exception("analysis of %s failed", name)
                job.status, job.error = "failed", f"The analysis stopped unexpectedly ({type(exc).__name__}: {exc})."
            finally:
                job.finished = time.monotonic()
                if cleanup is not None:
                    try:
                        cleanup()
                    except Exception:
                        log.exception("cleanup after %s failed", name)

        threading.Thread(target=target, name=f"classlens-job-{job.job_id}", daemon=True).start()
        return job, True

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def active(self) -> list[Job]:
        return [j for j in self.jobs() if j.active]

    def wait(self, job_id: str, timeout: float) -> Job | None:
        """Block until the job ends or `timeout` passes (tests, scripts)."""
        deadline = time.monotonic() + timeout
        job = self.get(job_id)
        while job is not None and job.active and time.monotonic() < deadline:
            time.sleep(0.1)
        return job
