"""A school's whole archive on Ray: every lecture through `core.pipeline.analyze`, into Parquet.

The driver (`run_batch`) lists the sources, skips lectures finished in an earlier run, and hands
the rest to a pool of plain Ray actors (`BatchWorker`), each of which loads the models once. A
worker analyses one video with the same code path as `python -m core analyze` into a private
DuckDB file on its own disk, then exports that lecture's rows (`SELECT *`, so every schema column
comes through) to Parquet in DIR:

    DIR/observations/lecture-000001.parquet   the lecture's observations
    DIR/students/lecture-000001.parquet       its students
    DIR/lectures/lecture-000001.parquet       one row: status, error, timings (written last)
    DIR/archive.duckdb                        views over them (core.archive) for the app

Each file is written under a temporary name and renamed, and the lectures row is written last, so
a worker killed mid-video (Ray restarts it and retries the task) leaves no partial or duplicate
rows: the retry resumes from the private DuckDB file's last committed batch when it runs on the
same node (the pipeline's own resume) and rewrites the same file names. A rerun of the command
skips lectures whose row says complete or no_faces and retries the others. DIR may be any
pyarrow filesystem URI (s3://…, gs://…) so that a cluster writes to shared storage.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core import archive
from core.errors import ClassLensError, UnreadableVideo
from core.settings import PROJECT_ROOT, Settings
from core.store import Store
from core.video import VIDEO_SUFFIXES

LIST_SUFFIXES = (".txt", ".lst", ".list")
FINISHED = ("complete", "no_faces")
EXPIRED = "expired"  # deleted by the retention period: only its row stays, so a rerun skips it
TABLES = ("observations", "students", "lectures")  # the order a lecture's files are written in


# -- where things are ---------------------------------------------------------------------------
def open_dir(out: str) -> tuple[pafs.FileSystem, str, str]:
    """DIR as (filesystem, path inside it, URI that DuckDB reads): a local folder or a URI."""
    if "://" in out:
        fs, path = pafs.FileSystem.from_uri(out)
        if isinstance(fs, pafs.LocalFileSystem):
            return fs, path, path
        return fs, path.rstrip("/"), out.rstrip("/")
    local = str(Path(out).expanduser().resolve())
    return pafs.LocalFileSystem(), local, local


def lecture_file(root: str, table: str, lecture_id: int) -> str:
    return f"{root}/{table}/lecture-{lecture_id:06d}.parquet"


def is_uri(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def expand_sources(sources: Iterable[str]) -> list[str]:
    """Video files, folders (recursive) and list files (one path or URI a line) -> sources.

    Local paths become absolute; a list file's relative entries are relative to its folder.

    Raises:
        ClassLensError: a SOURCE argument that does not exist (a listed entry that does not is
            kept and recorded as a failed lecture).
    """
    out: list[str] = []
    for raw in sources:
        if raw.startswith("file://"):
            raw = raw[len("file://") :]
        if is_uri(raw):
            out.extend(_expand_uri(raw))
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            out.extend(
                str(p.resolve()) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
            )
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = line.strip()
                if not entry or entry.startswith("#"):
                    continue
                if is_uri(entry):
                    out.extend(_expand_uri(entry))
                else:
                    p = Path(entry.removeprefix("file://")).expanduser()
                    out.append(str((p if p.is_absolute() else path.parent / p).resolve()))
        elif path.is_file():
            out.append(str(path.resolve()))
        else:
            raise ClassLensError(f"{raw} does not exist (give video files, folders or a .txt list of paths).")
    return list(dict.fromkeys(out))  # first occurrence wins, order kept


def _expand_uri(uri: str) -> list[str]:
    fs, path = pafs.FileSystem.from_uri(uri)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.Directory:
        return [uri]
    scheme = uri.split("://", 1)[0]
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sorted(f"{scheme}://{i.path}" for i in infos if i.is_file and Path(i.path).suffix.lower() in VIDEO_SUFFIXES)


# -- jobs and their results ---------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One lecture to analyse: its archive id and where the video is."""

    lecture_id: int
    source: str


@dataclass(frozen=True)
class JobResult:
    """What a worker reports back about one lecture (the rows are already in DIR)."""

    lecture_id: int
    source: str
    status: str
    error: str | None
    observations: int
    duration_s: float
    analysis_s: float
    worker: str


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, ClassLensError) else f"{type(exc).__name__}: {text}"


def _write_atomic(fs: pafs.FileSystem, path: str, table: pa.Table) -> None:
    """Write a Parquet file under a temporary name in the same folder, then rename it."""
    folder, name = path.rsplit("/", 1)
    fs.create_dir(folder, recursive=True)
    tmp = f"{folder}/.{name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    pq.write_table(table, tmp, filesystem=fs)
    fs.move(tmp, path)


def _delete(fs: pafs.FileSystem, path: str) -> None:
    if fs.get_file_info(path).type == pafs.FileType.File:
        fs.delete_file(path)


def export_lecture(
    store: Store, scratch_id: int, job: Job, fs: pafs.FileSystem, root: str, *, analysis_s: float, worker: str
) -> tuple[str, str | None, int, float]:
    """Copy one lecture from a private Store into DIR's Parquet files: (status, error, rows, duration).

    Observations and students are written first, the lectures row last (it marks the lecture
    done); a lecture that did not finish has its data files removed, so only its row remains.
    """
    with store.connect() as con:
        lecture = con.sql(
            "SELECT * REPLACE (CAST($id AS INTEGER) AS lecture_id), CAST($path AS VARCHAR) AS path, "
            "CAST($analysis_s AS DOUBLE) AS analysis_s, CAST($worker AS VARCHAR) AS batch_worker "
            "FROM lectures WHERE lecture_id = $scratch",
            params={"id": job.lecture_id, "path": job.source, "analysis_s": analysis_s, "worker": worker,
                    "scratch": scratch_id},
        ).to_arrow_table()  # fmt: skip
        status, error = lecture["status"][0].as_py(), lecture["error"][0].as_py()
        data = {}
        if status in FINISHED:
            for table, order in (("observations", "student_id, frame_index"), ("students", "student_id")):
                data[table] = con.sql(
                    f"SELECT * REPLACE (CAST($id AS INTEGER) AS lecture_id) FROM {table} "
                    f"WHERE lecture_id = $scratch ORDER BY {order}",
                    params={"id": job.lecture_id, "scratch": scratch_id},
                ).to_arrow_table()
    for table in ("observations", "students"):
        target = lecture_file(root, table, job.lecture_id)
        if table in data:
            _write_atomic(fs, target, data[table])
        else:
            _delete(fs, target)
    _write_atomic(fs, lecture_file(root, "lectures", job.lecture_id), lecture)
    rows = data["observations"].num_rows if "observations" in data else 0
    duration = lecture["duration_s"][0].as_py() or 0.0
    return status, error, rows, float(duration)


def record_failure(job: Job, settings: Settings, error: str, out: str, *, worker: str = "") -> JobResult:
    """Write a failed lecture's row (and remove any data files of an earlier attempt)."""
    fs, root, _ = open_dir(out)
    with tempfile.TemporaryDirectory(prefix="classlens-failed-") as tmp:
        store = Store(Path(tmp) / "failed.duckdb")
        scratch = store.create_lecture(
            _file_name(job.source), None, settings_key=settings.analysis_key(), sample_fps=settings.fps
        )
        store.set_status(scratch, "failed", error=error)
        export_lecture(store, scratch, job, fs, root, analysis_s=0.0, worker=worker)
    return JobResult(job.lecture_id, job.source, "failed", error, 0, 0.0, 0.0, worker)


def _file_name(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1]


# -- the worker -------------------------------------------------------------------------------
class BatchWorker:
    """A Ray actor: models loaded once, then one lecture per `analyse` call.

    Args:
        settings: the analysis settings (the same for every lecture of the batch).
        out: DIR (local folder or URI).
    """

    def __init__(self, settings: Settings, out: str) -> None:
        from core.pipeline import load_models

        self.settings = settings
        self.out = out
        self.fs, self.root, _ = open_dir(out)
        self.models = load_models(settings)  # once per worker, for all its lectures
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        digest = hashlib.sha1(f"{self.root}|{settings.analysis_key()}".encode()).hexdigest()[:12]
        self.scratch_root = Path(tempfile.gettempdir()) / "classlens-batch" / digest

    def analyse(self, job: Job) -> JobResult:
        """Analyse one lecture into a private DuckDB file, then export its rows to DIR."""
        from core.pipeline import analyze

        scratch = self.scratch_root / f"lecture-{job.lecture_id:06d}"
        scratch.mkdir(parents=True, exist_ok=True)
        store = Store(scratch / "work.duckdb")  # kept across a killed attempt: the retry resumes
        started = time.perf_counter()
        try:
            video = self._local_copy(job.source, scratch)
            result = analyze(video, store, self.settings, models=self.models, display_name=_file_name(job.source))
        except Exception as exc:  # unreadable file (ClassLensError) or a bug: record it, go on
            shutil.rmtree(scratch, ignore_errors=True)
            return record_failure(job, self.settings, one_line(exc), self.out, worker=self.name)
        analysis_s = time.perf_counter() - started
        status, error, rows, duration = export_lecture(
            store, result.lecture_id, job, self.fs, self.root, analysis_s=analysis_s, worker=self.name
        )
        shutil.rmtree(scratch, ignore_errors=True)
        return JobResult(job.lecture_id, job.source, status, error, rows, duration, analysis_s, self.name)

    @staticmethod
    def _local_copy(source: str, scratch: Path) -> Path:
        """A local path for the video: itself, or a copy of a URI in the scratch folder."""
        if not is_uri(source):
            path = Path(source)
            if not path.is_file():
                raise UnreadableVideo(f"{source} does not exist or is not a file.")
            return path
        fs, path = pafs.FileSystem.from_uri(source)
        local = scratch / ("video" + Path(path).suffix.lower())
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            raise UnreadableVideo(f"{source} does not exist or is not a file.")
        if not local.exists() or local.stat().st_size != info.size:
            part = local.with_suffix(".part")
            with fs.open_input_stream(path) as src, open(part, "wb") as dst:
                while block := src.read(1 << 22):
                    dst.write(block)
            os.replace(part, local)
        return local


# -- the driver -------------------------------------------------------------------------------
def start_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to a cluster (`auto`, `ray://host:10001`) or start a local Ray sized to this
    machine; returns whether this call started or connected it (and so should shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ModuleNotFoundError, ValueError) as exc:
            hint = ' (Ray Client needs `pip install "ray[client]==2.60.0"`)' if address.startswith("ray://") else ""
            raise ClassLensError(f"Cannot use the Ray cluster at {address}: {one_line(exc)}{hint}") from exc
        return True
    # Local workers are started by the raylet this call starts: they inherit this environment.
    paths = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    return True


def finished_lectures(fs: pafs.FileSystem, root: str) -> dict[tuple[str, str], tuple[int, str]]:
    """(path, settings key) -> (lecture id, status) of every lecture row already in DIR."""
    folder = f"{root}/lectures"
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return {}
    out = {}
    for info in fs.get_file_info(pafs.FileSelector(folder)):
        if not info.is_file or not info.base_name.endswith(".parquet") or info.base_name.startswith("."):
            continue
        t = pq.read_table(info.path, filesystem=fs, columns=["lecture_id", "path", "settings", "status"])
        for row in t.to_pylist():
            out[(row["path"], row["settings"])] = (int(row["lecture_id"]), row["status"])
    return out


@dataclass
class BatchSummary:
    """The last stdout line of `python -m core batch` (`as_json`), plus per-lecture results."""

    lectures: int
    complete: int = 0
    failed: int = 0
    skipped: int = 0
    observations: int = 0
    video_hours: float = 0.0
    seconds: float = 0.0
    workers: int = 0
    results: list[JobResult] = field(default_factory=list)
    archive: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "lectures": self.lectures, "complete": self.complete, "failed": self.failed, "skipped": self.skipped,
            "observations": self.observations, "video_hours": round(self.video_hours, 4),
            "seconds": round(self.seconds, 2), "workers": self.workers,
        }  # fmt: skip


def run_batch(
    sources: Iterable[str],
    out: str,
    *,
    settings: Settings | None = None,
    ray_address: str | None = None,
    workers: int | None = None,
    show_progress: bool = True,
    on_result: Callable[[JobResult], None] | None = None,
    max_task_retries: int = 2,
    retention_days: int = 0,
) -> BatchSummary:
    """Analyse every source into DIR with a pool of Ray actors; returns the summary.

    Args:
        sources: video files, folders and list files (see `expand_sources`).
        out: DIR, a local folder or a pyarrow filesystem URI.
        settings: analysis settings (default: environment).
        ray_address: a cluster (`auto`, `ray://host:10001`); None = the running Ray instance, or
            a local one sized to this machine.
        workers: actors (default: the cluster's CPUs, at most one per lecture).
        show_progress: a progress bar on stderr.
        on_result: called with each lecture's result as it arrives (in the driver).
        max_task_retries: how often a lecture is retried when its worker dies.
        retention_days: lectures analysed longer ago than this are deleted first (0 = keep);
            see `expire_lectures`.
    """
    import ray
    from tqdm import tqdm

    settings = settings or Settings.from_env()
    started = time.perf_counter()
    paths = expand_sources(sources)
    fs, root, uri = open_dir(out)
    for table in TABLES:
        fs.create_dir(f"{root}/{table}", recursive=True)
    _remove_temporaries(fs, root)
    expired = expire_lectures(fs, root, retention_days)
    if expired and show_progress:
        print(f"{len(expired)} lecture(s) past the {retention_days}-day retention period deleted", file=sys.stderr)
    done = finished_lectures(fs, root)
    key = settings.analysis_key()
    next_id = max((lid for lid, _ in done.values()), default=0) + 1
    summary = BatchSummary(lectures=len(paths))
    jobs: deque[Job] = deque()
    for path in paths:
        known = done.get((path, key))
        if known and known[1] in (*FINISHED, EXPIRED):
            summary.skipped += 1
            continue
        if known:
            jobs.append(Job(known[0], path))
        else:
            jobs.append(Job(next_id, path))
            next_id += 1

    owns_ray = False
    to_run = len(jobs)
    if jobs:
        owns_ray = start_ray(ray_address)
    try:
        if jobs:
            _run_jobs(jobs, settings, out, summary, workers, show_progress, on_result, max_task_retries)
    finally:
        if owns_ray:
            ray.shutdown()
    summary.archive = _write_archive(fs, root, uri)
    summary.seconds = time.perf_counter() - started
    if show_progress and not to_run:
        tqdm.write(f"nothing to analyse: {summary.skipped} lecture(s) finished earlier", file=sys.stderr)
    return summary


def _run_jobs(
    jobs: deque[Job],
    settings: Settings,
    out: str,
    summary: BatchSummary,
    workers: int | None,
    show_progress: bool,
    on_result: Callable[[JobResult], None] | None,
    max_task_retries: int,
) -> None:
    import ray
    from ray.exceptions import RayActorError, RayError
    from tqdm import tqdm

    cpus = float(ray.cluster_resources().get("CPU", 1))
    n = max(1, min(workers or int(cpus), len(jobs)))
    actor_cls = ray.remote(BatchWorker).options(
        num_cpus=min(1.0, cpus / n), max_restarts=-1, max_task_retries=max_task_retries
    )
    actors = [actor_cls.remote(settings, out) for _ in range(n)]
    summary.workers = n
    bar = tqdm(
        total=summary.lectures, initial=summary.skipped, unit="lecture", file=sys.stderr, disable=not show_progress
    )
    started = time.perf_counter()
    free = list(actors)
    pending: dict[ray.ObjectRef, tuple[Job, object]] = {}
    try:
        while jobs or pending:
            while jobs and free:
                actor = free.pop()
                job = jobs.popleft()
                pending[actor.analyse.remote(job)] = (job, actor)  # type: ignore[attr-defined]
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job, actor = pending.pop(ref)
                free.append(actor)
                try:
                    result: JobResult = ray.get(ref)
                except RayActorError as exc:  # the worker died on every attempt (e.g. out of memory)
                    reason = f"the worker died {max_task_retries + 1} times on this video: {one_line(exc)[:200]}"
                    result = record_failure(job, settings, reason, out)
                except RayError as exc:  # e.g. DIR could not be written: the worker's own exception
                    result = record_failure(job, settings, one_line(getattr(exc, "cause", None) or exc)[:300], out)
                summary.results.append(result)
                if result.status in FINISHED:
                    summary.complete += 1
                    summary.observations += result.observations
                    summary.video_hours += result.duration_s / 3600
                else:
                    summary.failed += 1
                    bar.write(f"failed: {result.source}: {result.error}", file=sys.stderr)
                if on_result is not None:
                    on_result(result)
                hours = (time.perf_counter() - started) / 3600
                bar.set_postfix_str(f"{summary.video_hours / hours:.1f} video h/h" if hours > 0 else "", refresh=False)
                bar.update(1)
    finally:
        bar.close()
        for actor in actors:
            ray.kill(actor)  # type: ignore[arg-type]


def expire_lectures(fs: pafs.FileSystem, root: str, retention_days: int, now: datetime | None = None) -> list[int]:
    """Delete the rows of lectures analysed more than `retention_days` ago (0 = keep all).

    Their observations and students files go; the lectures row stays with status `expired` and
    no results, so that rerunning the same command does not analyse the video again (remove the
    row's file to allow that). The archive's `lectures` view leaves expired rows out.
    """
    if retention_days <= 0:
        return []
    cutoff = (now or datetime.now()) - timedelta(days=retention_days)
    expired = []
    for info in fs.get_file_info(pafs.FileSelector(f"{root}/lectures")):
        if not info.is_file or info.base_name.startswith(".") or not info.base_name.endswith(".parquet"):
            continue
        row = pq.read_table(info.path, filesystem=fs)
        status, created = row["status"][0].as_py(), row["created_at"][0].as_py()
        if status not in FINISHED or created is None or created >= cutoff:  # failed rows hold no data
            continue
        lecture_id = int(row["lecture_id"][0].as_py())
        for table in ("observations", "students"):
            _delete(fs, lecture_file(root, table, lecture_id))
        row = row.set_column(row.schema.get_field_index("status"), "status", pa.array([EXPIRED]))
        note = f"deleted after the {retention_days}-day retention period"
        row = row.set_column(row.schema.get_field_index("error"), "error", pa.array([note]))
        _write_atomic(fs, info.path, row)
        expired.append(lecture_id)
    return expired


def _remove_temporaries(fs: pafs.FileSystem, root: str) -> None:
    """Half-written files of workers killed in an earlier run (one driver per DIR at a time)."""
    for table in TABLES:
        for info in fs.get_file_info(pafs.FileSelector(f"{root}/{table}")):
            if info.is_file and info.base_name.startswith(".") and info.base_name.endswith(".tmp"):
                fs.delete_file(info.path)


def _write_archive(fs: pafs.FileSystem, root: str, uri: str) -> str:
    """(Re)build DIR/archive.duckdb; uploaded when DIR is not local."""
    with_files = set()
    for table in ("lectures", "students", "observations"):
        infos = fs.get_file_info(pafs.FileSelector(f"{root}/{table}"))
        if any(i.is_file and i.base_name.endswith(".parquet") and not i.base_name.startswith(".") for i in infos):
            with_files.add(table)
    if isinstance(fs, pafs.LocalFileSystem):
        return str(archive.build(uri, with_files, Path(root)))
    local = archive.build(uri, with_files, None)
    target = f"{root}/{archive.ARCHIVE_FILE}"
    with open(local, "rb") as src, fs.open_output_stream(target) as dst:
        dst.write(src.read())
    shutil.rmtree(local.parent, ignore_errors=True)
    return uri + "/" + archive.ARCHIVE_FILE
