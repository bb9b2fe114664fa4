"""DuckDB store: schema with migrations, lectures, students and observations (the one writer).

Connections are short-lived: each operation opens the file, works in one transaction and closes
it, so two processes (the app and a CLI run, or two CLI runs) can take turns on one database
file. A process that finds the file locked by another waits and retries, then gives up with a
clear `DatabaseBusy` message. Within one process, DuckDB shares the database between threads.
No video frames or face crops are ever stored.

Only ClassLens's own files are opened: a path that is not a local file (`:memory:`, `md:...`),
a file that is not DuckDB, or a DuckDB file with tables but no ClassLens schema is refused
before anything is written; DuckDB never loads or installs an extension (everything offline).
A ClassLens archive (`classlens_archive` marker table, views over Parquet) opens read-only.

One live run per lecture: `claim` gives the run a token; every write of that run checks, in its
own transaction, that the lecture still carries the token, so a run that lost its claim stops
(`ClaimLost`) instead of writing beside the run that took over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.errors import ClassLensError, LectureBusy, LectureNotFound
from core.faces import EMOTIONS
from core.track import TrackState
from core.vision.records import StudentObservation

SCHEMA_VERSION = 4
EMOTION_COLUMNS = tuple(f"p_{e}" for e in EMOTIONS)
OBSERVATION_COLUMNS = (
    "lecture_id", "student_id", "t", "frame_index", "x1", "y1", "x2", "y2", "det_score",
    *EMOTION_COLUMNS, "dominant_emotion", "dominant_conf",
    "yaw", "pitch", "roll", "eyes_open", "gaze_x", "gaze_y", "attention",
    "present", "face_visible", "head_down", "head_turned", "hand_raised", "posture",
    "sx1", "sy1", "sx2", "sy2", "person_score", "face_change",
)  # fmt: skip
# Per-student state every sample (schema 4); NULL in rows written before (they were all faces).
STUDENT_COLUMNS = ("present", "face_visible", "head_down", "head_turned", "hand_raised", "posture")
HEARTBEAT_STALE_S = 60.0
"""A run on another machine whose heartbeat is older than this is presumed dead (on this machine
the process table decides, whatever the heartbeat)."""

# Offline by design: DuckDB must never fetch an extension (e.g. for an .sqlite file or `md:`).
DUCKDB_CONFIG = {"autoload_known_extensions": False, "autoinstall_known_extensions": False}
ARCHIVE_MARKER = "classlens_archive"
_LECTURE_MARKER_COLUMNS = {"lecture_id", "sha256", "sample_fps", "settings", "status", "progress_t", "heartbeat_at"}
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-12 of every DuckDB database file
_SQLITE_MAGIC = b"SQLite format 3\x00"

log = logging.getLogger(__name__)


def _first(result: duckdb.DuckDBPyConnection) -> tuple | None:
    """First row of a result, consuming it (DuckDB refuses new work while a result is open)."""
    rows = result.fetchall()
    return rows[0] if rows else None


_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path) -> threading.Lock:
    """One lock per database file for this process (threads share DuckDB's database instance)."""
    key = str(path.resolve())
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.Lock())


class DatabaseBusy(ClassLensError):
    """Another program holds the database file for longer than we are willing to wait."""


class NotAClassLensDatabase(ClassLensError):
    """The path is not a local file, not a DuckDB file, or a DuckDB file of another program."""


class DatabaseMissing(ClassLensError):
    """A command that only reads found no database file where it expected one."""


class ClaimLost(LectureBusy):
    """The lecture was taken over by another run while this one was paused; this run stopped."""


# Claim tokens of the runs of this process that are still going (added by `claim`, removed
# when the run writes its final status). A claim whose token names this process but is not here
# is a run of this process that is over.
_LIVE_CLAIMS: set[str] = set()
_LIVE_CLAIMS_GUARD = threading.Lock()


# Each entry moves the schema from version i to i + 1. Never edit a shipped step: add one.
MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: lectures, students, observations
    """
    CREATE SEQUENCE IF NOT EXISTS lecture_ids START 1;
    CREATE TABLE IF NOT EXISTS lectures (
        lecture_id INTEGER PRIMARY KEY DEFAULT nextval('lecture_ids'),
        file_name VARCHAR NOT NULL,
        sha256 VARCHAR,
        source VARCHAR NOT NULL DEFAULT 'file',
        duration_s DOUBLE,
        frame_rate DOUBLE,
        width INTEGER,
        height INTEGER,
        sample_fps DOUBLE NOT NULL,
        settings VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        progress_t DOUBLE NOT NULL DEFAULT -1,
        frames_sampled INTEGER NOT NULL DEFAULT 0,
        warnings VARCHAR,
        error VARCHAR,
        worker VARCHAR,
        heartbeat_at TIMESTAMP,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE IF NOT EXISTS students (
        lecture_id INTEGER NOT NULL,
        student_id INTEGER NOT NULL,
        label VARCHAR NOT NULL,
        identity VARCHAR,
        first_t DOUBLE,
        PRIMARY KEY (lecture_id, student_id)
    );
    CREATE TABLE IF NOT EXISTS observations (
        lecture_id INTEGER NOT NULL,
        student_id INTEGER NOT NULL,
        t DOUBLE NOT NULL,
        frame_index INTEGER NOT NULL,
        x1 REAL, y1 REAL, x2 REAL, y2 REAL,
        det_score REAL,
        p_angry REAL, p_disgust REAL, p_fear REAL, p_happy REAL, p_sad REAL, p_surprise REAL,
        p_neutral REAL,
        dominant_emotion VARCHAR,
        dominant_conf REAL,
        yaw REAL, pitch REAL, roll REAL,
        eyes_open REAL,
        gaze_x REAL, gaze_y REAL,
        attention REAL,
        PRIMARY KEY (lecture_id, student_id, frame_index)
    );
    """,
    # 1 -> 2: roster (names and face embeddings only, never photos) and stored reports
    """
    CREATE TABLE IF NOT EXISTS roster_embeddings (
        name VARCHAR NOT NULL,
        embedding FLOAT[] NOT NULL,
        added_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE IF NOT EXISTS reports (
        lecture_id INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        writer VARCHAR NOT NULL,
        model VARCHAR,
        text VARCHAR NOT NULL
    );
    """,
    # 2 -> 3: per-student running face embedding (kept only while a lecture is being analysed, to
    # match the roster and merge split tracks; cleared when the analysis finishes) and the
    # lecture's "front" head direction used by the attention score.
    """
    ALTER TABLE students ADD COLUMN embedding FLOAT[];
    ALTER TABLE students ADD COLUMN embedding_n INTEGER;
    ALTER TABLE lectures ADD COLUMN front_yaw DOUBLE;
    ALTER TABLE lectures ADD COLUMN front_pitch DOUBLE;
    ALTER TABLE lectures ADD COLUMN front_learnt BOOLEAN;
    """,
    # 3 -> 4: students, not faces. One row per known student per sample: present or not, the
    # student box (body) and pose-model score, whether the face is visible (face columns are NULL
    # when not), the body state read from keypoints, and how much the face changed since the
    # student's previous face (a still picture scores ~0). Older rows (faces) keep NULL here.
    """
    ALTER TABLE observations ADD COLUMN present BOOLEAN;
    ALTER TABLE observations ADD COLUMN face_visible BOOLEAN;
    ALTER TABLE observations ADD COLUMN head_down BOOLEAN;
    ALTER TABLE observations ADD COLUMN head_turned BOOLEAN;
    ALTER TABLE observations ADD COLUMN hand_raised BOOLEAN;
    ALTER TABLE observations ADD COLUMN posture VARCHAR;
    ALTER TABLE observations ADD COLUMN sx1 REAL;
    ALTER TABLE observations ADD COLUMN sy1 REAL;
    ALTER TABLE observations ADD COLUMN sx2 REAL;
    ALTER TABLE observations ADD COLUMN sy2 REAL;
    ALTER TABLE observations ADD COLUMN person_score REAL;
    ALTER TABLE observations ADD COLUMN face_change REAL;
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION


@dataclass(frozen=True)
class Lecture:
    """One row of `lectures`."""

    lecture_id: int
    file_name: str
    sha256: str | None
    status: str
    progress_t: float
    frames_sampled: int
    sample_fps: float
    duration_s: float | None
    settings: str
    warnings: list[str]


class Store:
    """The DuckDB file behind ClassLens.

    Args:
        path: database file (created with its folder if missing, unless `create` is False).
        lock_timeout_s: how long to wait for another process that holds the file.
        create: False for commands that only read (report, roster list): a missing file is an
            error instead of a new empty database.
        claim_timeout_s: a run on another machine whose heartbeat is older than this may be taken
            over (a run on this machine is taken over only when its process is gone).

    Raises:
        NotAClassLensDatabase: `:memory:`, `md:` or another non-file path, a folder, a file that
            is not DuckDB, or a DuckDB file of another program (left untouched).
        DatabaseMissing: `create` is False and there is no file.
    """

    def __init__(
        self,
        path: str | Path,
        lock_timeout_s: float = 120.0,
        *,
        create: bool = True,
        claim_timeout_s: float = HEARTBEAT_STALE_S,
    ) -> None:
        self.path = check_db_path(path)
        self.lock_timeout_s = lock_timeout_s
        self.claim_timeout_s = claim_timeout_s
        self.worker = _process_identity()
        self.read_only = False
        self._claims: dict[int, str] = {}  # lecture id -> token of this store's run on it
        self._busy_since: float | None = None  # set when a wait for the file lock gave up
        if self.path.is_file() and self.path.stat().st_size == 0 and create:
            self.path.unlink()  # an empty file holds nothing and DuckDB cannot open it: start afresh
        if not self.path.exists() or self.path.stat().st_size == 0:
            if not create:
                raise DatabaseMissing(
                    f"There is no ClassLens database at {self.path}; analyse a lecture first or check --db."
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                where = exc.filename or self.path.parent
                raise NotAClassLensDatabase(
                    f"Cannot create the database {self.path}: {exc.strerror or exc} ({where})."
                ) from exc
        else:
            self._check_marker()
        if self.read_only:
            self._check_version(self.schema_version())
        else:
            self.migrate()

    def _check_marker(self) -> None:
        """Refuse, untouched, a DuckDB file that belongs to another program; archives are read-only."""
        with self.connect(inspect=True) as con:
            tables = {
                str(r[0])
                for r in con.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_catalog = current_database() AND table_schema = 'main'"
                ).fetchall()
            }
            columns = {
                str(r[0])
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
                    "AND table_schema = 'main' AND table_name = 'lectures'"
                ).fetchall()
            }
        if not tables:
            return  # an empty DuckDB file: ours to set up
        if ARCHIVE_MARKER in tables and "schema_version" in tables:
            self.read_only = True
            return
        if "schema_version" in tables and (_LECTURE_MARKER_COLUMNS <= columns or tables == {"schema_version"}):
            return
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise NotAClassLensDatabase(
            f"{self.path}: this DuckDB file belongs to another program (tables {shown}; no ClassLens schema). "
            "It was left untouched; give ClassLens its own file."
        )

    # -- connections -------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, *, timeout_s: float | None = None, inspect: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh connection; waits while another process holds the file lock.

        Args:
            timeout_s: how long to wait for the lock (default `lock_timeout_s`).
            inspect: open read-only (to look at a file before deciding it is ours).

        Raises:
            DatabaseBusy: the lock was not released in time (the message gives the real wait).
        """
        wait = self.lock_timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        delay = 0.05
        read_only = self.read_only or inspect
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only, config=dict(DUCKDB_CONFIG))
                break
            except duckdb.Error as exc:
                other_mode = isinstance(exc, duckdb.ConnectionException) and "different configuration" in str(exc)
                if other_mode and read_only and not self.read_only:
                    # This process has the file open for writing (it is ours): look through that.
                    read_only = False
                    continue
                # Busy: another process holds the file, or another thread of this one is taking a
                # read-only look at it (a moment); anything else is not a file we can use.
                locked = isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()
                if not (locked or other_mode):
                    raise NotAClassLensDatabase(f"Cannot open the database {self.path}: {_one_line(exc)}") from exc
                waited = time.monotonic() - started
                if waited >= wait:
                    self._busy_since = time.monotonic()
                    raise DatabaseBusy(
                        f"The database {self.path} is in use by another program (waited {waited:.0f} s). "
                        "Try again when it has finished; a stopped analysis resumes where it was."
                    ) from exc
                time.sleep(min(delay, max(0.0, wait - waited)))
                delay = min(delay * 2, 1.0)
        self._busy_since = None
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self, *, timeout_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN/COMMIT (ROLLBACK on any error)."""
        if self.read_only:
            raise ClassLensError(f"{self.path.name} is a ClassLens archive: it can be read, not changed.")
        with self.connect(timeout_s=timeout_s) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def query_df(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Read-only helper: run `sql` with bound parameters into a DataFrame."""
        with self.connect() as con:
            return con.execute(sql, list(params)).df()

    # -- schema --------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self.connect() as con:
            if not self.read_only:
                con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = _first(con.execute("SELECT max(version) FROM schema_version"))
            return int(row[0]) if row and row[0] is not None else 0

    def migrate(self) -> None:
        """Bring the file to `SCHEMA_VERSION`, one transaction per step."""
        version = self.schema_version()
        self._check_version(version)
        for step in range(version, SCHEMA_VERSION):
            with self.transaction() as con:
                con.execute(MIGRATIONS[step])
                con.execute("DELETE FROM schema_version")
                con.execute("INSERT INTO schema_version VALUES (?)", [step + 1])

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise ClassLensError(
                f"{self.path.name} was written by a newer ClassLens (schema {version} > {SCHEMA_VERSION})."
            )

    # -- lectures ------------------------------------------------------------------------------
    def _lecture(self, con: duckdb.DuckDBPyConnection, lecture_id: int) -> Lecture:
        row = _first(
            con.execute(
                "SELECT lecture_id, file_name, sha256, status, progress_t, frames_sampled, sample_fps, "
                "duration_s, settings, warnings FROM lectures WHERE lecture_id = ?",
                [lecture_id],
            )
        )
        if row is None:
            raise LectureNotFound(f"No lecture {lecture_id} in {self.path.name}.")
        return Lecture(*row[:9], warnings=json.loads(row[9]) if row[9] else [])

    def lecture(self, lecture_id: int) -> Lecture:
        with self.connect() as con:
            return self._lecture(con, lecture_id)

    def find_or_create_lecture(
        self,
        file_name: str,
        sha256: str,
        *,
        settings_key: str,
        sample_fps: float,
        duration_s: float | None = None,
        frame_rate: float | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> tuple[Lecture, bool]:
        """The lecture of this file and settings, created when there is none: (lecture, created).

        Atomic: one transaction (one process holds the file at a time) under a per-file lock
        (threads of one process share the database), so two runs of the same file started at
        the same moment get one lecture, and `claim` then lets only one of them analyse it.
        """
        with _file_lock(self.path), self.transaction() as con:
            row = _first(
                con.execute(
                    "SELECT lecture_id FROM lectures WHERE sha256 = ? AND settings = ? ORDER BY lecture_id LIMIT 1",
                    [sha256, settings_key],
                )
            )
            if row is not None:
                return self._lecture(con, row[0]), False
            lecture_id = self._insert_lecture(
                con, _lecture_row(file_name, sha256, settings_key, sample_fps, duration_s, frame_rate, width, height)
            )
            return self._lecture(con, lecture_id), True

    def create_lecture(
        self,
        file_name: str,
        sha256: str | None,
        *,
        settings_key: str,
        sample_fps: float,
        duration_s: float | None = None,
        frame_rate: float | None = None,
        width: int | None = None,
        height: int | None = None,
        source: str = "file",
        status: str = "pending",
    ) -> int:
        values = _lecture_row(
            file_name, sha256, settings_key, sample_fps, duration_s, frame_rate, width, height, source, status
        )
        with self.transaction() as con:
            return self._insert_lecture(con, values)

    @staticmethod
    def _insert_lecture(con: duckdb.DuckDBPyConnection, values: dict[str, object]) -> int:
        """INSERT one lecture row from column -> value (column names come from this module)."""
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        sql = f"INSERT INTO lectures ({columns}) VALUES ({marks}) RETURNING lecture_id"
        row = _first(con.execute(sql, list(values.values())))
        assert row is not None
        return int(row[0])

    def claim(self, lecture_id: int) -> str:
        """Mark the lecture as being analysed by a new run of this store; returns the run's token.

        A claim held by a live run is never taken over: on this machine, a run whose process is
        alive (even paused or asleep, whatever its heartbeat); on another machine, a run whose
        heartbeat is younger than `claim_timeout_s`. Later writes of this store to the lecture
        check the token in their own transaction.

        Raises:
            LectureBusy: another live run is analysing it.
        """
        token = f"{self.worker}:{uuid.uuid4().hex[:12]}"
        try:
            with _file_lock(self.path), self.transaction() as con:
                row = _first(
                    con.execute(
                        "SELECT status, worker, epoch(current_timestamp::TIMESTAMP - heartbeat_at) "
                        "FROM lectures WHERE lecture_id = ?",
                        [lecture_id],
                    )
                )
                if row is None:
                    raise LectureNotFound(f"No lecture {lecture_id} in {self.path.name}.")
                status, worker, age = row
                if status == "running" and _worker_alive(worker, age, self.claim_timeout_s):
                    raise LectureBusy(
                        "This lecture is being analysed right now in another window or process; "
                        "its results will appear when that run finishes."
                    )
                con.execute(
                    "UPDATE lectures SET status = 'running', worker = ?, heartbeat_at = current_timestamp, "
                    "updated_at = current_timestamp, error = NULL WHERE lecture_id = ?",
                    [token, lecture_id],
                )
        except duckdb.TransactionException as exc:
            raise LectureBusy("This lecture was claimed by another run a moment ago.") from exc
        with _LIVE_CLAIMS_GUARD:
            _LIVE_CLAIMS.add(token)
        self._claims[lecture_id] = token
        return token

    def _check_owner(self, con: duckdb.DuckDBPyConnection, lecture_id: int) -> None:
        """Inside a write transaction: stop unless this store's run still owns the lecture.

        Without a claim of this store, writing is allowed unless another live run holds the lecture.

        Raises:
            ClaimLost: another run took the lecture over, or it was deleted meanwhile.
        """
        row = _first(
            con.execute(
                "SELECT status, worker, epoch(current_timestamp::TIMESTAMP - heartbeat_at) "
                "FROM lectures WHERE lecture_id = ?",
                [lecture_id],
            )
        )
        token = self._claims.get(lecture_id)
        if row is None:
            self._end_run(token)
            raise ClaimLost(f"Lecture {lecture_id} was deleted while it was being analysed; this run stopped.")
        status, worker, age = row
        if token is not None and worker != token:
            self._end_run(token)  # the claim stays recorded so `set_status` changes nothing either
            raise ClaimLost(
                f"Lecture {lecture_id} was taken over by another run while this one was paused; this run "
                "stopped without writing more (the other run's results are kept)."
            )
        if token is None and status == "running" and _worker_alive(worker, age, self.claim_timeout_s):
            raise ClaimLost(f"Lecture {lecture_id} is being analysed by another run; nothing was written.")

    @staticmethod
    def _end_run(token: str | None) -> None:
        if token is not None:
            with _LIVE_CLAIMS_GUARD:
                _LIVE_CLAIMS.discard(token)

    def _release(self, lecture_id: int) -> None:
        token = self._claims.pop(lecture_id, None)
        if token is not None:
            with _LIVE_CLAIMS_GUARD:
                _LIVE_CLAIMS.discard(token)

    def heartbeat(self, lecture_id: int) -> None:
        """Tell other processes this lecture's run is still going (no rows to append right now).

        Raises:
            ClaimLost: the run no longer owns the lecture.
        """
        with self.transaction() as con:
            self._check_owner(con, lecture_id)
            con.execute("UPDATE lectures SET heartbeat_at = current_timestamp WHERE lecture_id = ?", [lecture_id])

    def abandoned_live_lectures(self) -> list[int]:
        """Live lectures still marked running whose session is gone (closed tab, stopped server).

        A live session's heartbeat stops with its tab, so here a stale heartbeat means gone even
        when the process that served the tab is still running.
        """
        df = self.query_df(
            "SELECT lecture_id, worker, epoch(current_timestamp::TIMESTAMP - heartbeat_at) AS age "
            "FROM lectures WHERE source = 'live' AND status = 'running'"
        )
        gone = []
        for r in df.itertuples():
            age = None if pd.isna(r.age) else float(r.age)
            if age is None or age > self.claim_timeout_s or not _worker_alive(r.worker, age, self.claim_timeout_s):
                gone.append(int(r.lecture_id))
                with _LIVE_CLAIMS_GUARD:
                    _LIVE_CLAIMS.discard(str(r.worker))
        return gone

    def set_status(
        self, lecture_id: int, status: str, *, error: str | None = None, warnings: list[str] | None = None
    ) -> None:
        """Write a lecture's status; from the run that claimed it, this also ends the claim.

        A run that lost its claim changes nothing (the run that took over owns the status). A run
        ending in failure while another program holds the database file waits only briefly and
        leaves the lecture as it is: its process is over, so the next run takes the lecture
        over at once and resumes it.
        """
        token = self._claims.get(lecture_id)
        failing = status in ("failed", "interrupted") and self._busy_since is not None
        try:
            with self.transaction(timeout_s=min(5.0, self.lock_timeout_s) if failing else None) as con:
                con.execute(
                    "UPDATE lectures SET status = ?, error = ?, warnings = coalesce(?, warnings), "
                    "worker = NULL, updated_at = current_timestamp WHERE lecture_id = ? "
                    "AND (CAST(? AS VARCHAR) IS NULL OR worker = ?)",
                    [status, error, json.dumps(warnings) if warnings is not None else None, lecture_id, token, token],
                )
        except DatabaseBusy:
            if not failing:
                raise
            log.warning("lecture %s left as it was: the database is still in use by another program", lecture_id)
        finally:
            self._release(lecture_id)

    def delete_lecture(self, lecture_id: int) -> None:
        """Remove a lecture with all its students, observations and reports."""
        with self.transaction() as con:
            for table in ("observations", "students", "reports", "lectures"):
                con.execute(f"DELETE FROM {table} WHERE lecture_id = ?", [lecture_id])

    def list_lectures(self) -> pd.DataFrame:
        return self.query_df(
            "SELECT l.lecture_id, l.file_name, l.sha256, l.created_at, l.duration_s, l.status, l.source, "
            "(SELECT count(*) FROM students s WHERE s.lecture_id = l.lecture_id) AS students "
            "FROM lectures l ORDER BY l.created_at DESC, l.lecture_id DESC"
        )

    # -- resume state --------------------------------------------------------------------------
    def track_state(self, lecture_id: int) -> tuple[list[TrackState], int, set[int]]:
        """Each student's last committed box and time, the next free student id and every known
        student id, to continue tracking after a restart."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT student_id, coalesce(sx1, x1), coalesce(sy1, y1), coalesce(sx2, x2), coalesce(sy2, y2), t "
                "FROM (SELECT *, row_number() OVER (PARTITION BY student_id ORDER BY t DESC) AS rn"
                " FROM observations WHERE lecture_id = ? AND coalesce(present, true)) WHERE rn = 1",
                [lecture_id],
            ).fetchall()
            row = _first(
                con.execute("SELECT coalesce(max(student_id), 0) + 1 FROM students WHERE lecture_id = ?", [lecture_id])
            )
            known = {
                int(r[0])
                for r in con.execute("SELECT student_id FROM students WHERE lecture_id = ?", [lecture_id]).fetchall()
            }
        states = [TrackState(int(r[0]), (r[1], r[2], r[3], r[4]), float(r[5])) for r in rows]
        return states, int(row[0]) if row else 1, known

    # -- observations --------------------------------------------------------------------------
    def append(
        self,
        lecture_id: int,
        students: list[StudentObservation],
        *,
        progress_t: float,
        frames_sampled: int,
        new_students: dict[int, float] | None = None,
    ) -> None:
        """Commit one batch of observations and the progress marker in one transaction.

        Args:
            students: observations with `track_id` set (track id = student id); absent
                students' rows too.
            progress_t: time of the last sampled frame covered by this batch (resume point).
            frames_sampled: total sampled frames so far.
            new_students: track id -> first time, for tracks first seen in this batch.

        Raises:
            ClaimLost: the run no longer owns the lecture (nothing of the batch is written).
        """
        with self.transaction() as con:
            self._check_owner(con, lecture_id)
            if new_students:
                start = _first(con.execute("SELECT count(*) FROM students WHERE lecture_id = ?", [lecture_id]))
                n0 = int(start[0]) if start else 0
                new_rows = pd.DataFrame(
                    {
                        "lecture_id": lecture_id,
                        "student_id": list(new_students),
                        "label": [f"Student {n0 + i + 1}" for i in range(len(new_students))],
                        "identity": None,
                        "first_t": list(new_students.values()),
                    }
                )
                con.register("new_students", new_rows)
                con.execute(
                    "INSERT INTO students (lecture_id, student_id, label, identity, first_t) "
                    "SELECT lecture_id, student_id, label, identity::VARCHAR, first_t "
                    "FROM new_students ON CONFLICT DO NOTHING"
                )
                con.unregister("new_students")
            if students:
                df = observations_frame(lecture_id, students)
                con.register("batch", df)
                con.execute(
                    f"INSERT INTO observations ({', '.join(OBSERVATION_COLUMNS)}) "
                    f"SELECT {', '.join(OBSERVATION_COLUMNS)} FROM batch ON CONFLICT DO NOTHING"
                )
                con.unregister("batch")
            con.execute(
                "UPDATE lectures SET progress_t = ?, frames_sampled = ?, heartbeat_at = current_timestamp, "
                "updated_at = current_timestamp WHERE lecture_id = ?",
                [progress_t, frames_sampled, lecture_id],
            )

    def discard_after(self, lecture_id: int, t: float) -> None:
        """Drop observations later than the committed progress marker (defensive on resume)."""
        with self.transaction() as con:
            self._check_owner(con, lecture_id)
            con.execute("DELETE FROM observations WHERE lecture_id = ? AND t > ?", [lecture_id, t])
            self._drop_students_never_present(con, lecture_id)

    @staticmethod
    def _drop_students_never_present(con: duckdb.DuckDBPyConnection, lecture_id: int) -> None:
        con.execute(
            "DELETE FROM observations o WHERE lecture_id = ? AND NOT EXISTS (SELECT 1 FROM observations p "
            "WHERE p.lecture_id = o.lecture_id AND p.student_id = o.student_id AND coalesce(p.present, true))",
            [lecture_id],
        )
        con.execute(
            "DELETE FROM students s WHERE lecture_id = ? AND NOT EXISTS (SELECT 1 FROM observations o "
            "WHERE o.lecture_id = s.lecture_id AND o.student_id = s.student_id)",
            [lecture_id],
        )

    def present_rows(self, lecture_id: int) -> pd.DataFrame:
        """The present observations' boxes and body state (for `core.vision.tracking.not_students`)."""
        return self.query_df(
            "SELECT student_id, person_score, face_change, x1, y1, x2, y2 FROM observations "
            "WHERE lecture_id = ? AND coalesce(present, true)",
            [lecture_id],
        )

    def delete_students(self, lecture_id: int, student_ids: Sequence[int]) -> None:
        """Remove students (all their rows) from a lecture: found not to be students."""
        if not student_ids:
            return
        with self.transaction() as con:
            for sid in student_ids:
                con.execute("DELETE FROM observations WHERE lecture_id = ? AND student_id = ?", [lecture_id, int(sid)])
                con.execute("DELETE FROM students WHERE lecture_id = ? AND student_id = ?", [lecture_id, int(sid)])

    # -- roster --------------------------------------------------------------------------------
    def roster_add(self, name: str, embeddings: np.ndarray, *, replace: bool = False) -> None:
        """Enrol `name` with (k, 512) face embeddings (only embeddings, never photos); with
        `replace`, the name's earlier embeddings are removed in the same transaction."""
        self.roster_add_many({name: embeddings}, replace=replace)

    def roster_add_many(self, people: dict[str, np.ndarray], *, replace: bool = False) -> None:
        """Enrol several people at once, all in one transaction: name -> (k, 512) embeddings;
        with `replace`, each name's earlier embeddings are removed first."""
        names = {name: name.strip() for name in people}
        if not all(names.values()):
            raise ClassLensError("A roster name cannot be empty.")
        with self.transaction() as con:
            for name, embeddings in people.items():
                if replace:
                    con.execute("DELETE FROM roster_embeddings WHERE name = ?", [names[name]])
                for emb in np.asarray(embeddings, dtype=np.float32).reshape(len(embeddings), -1):
                    con.execute(
                        "INSERT INTO roster_embeddings (name, embedding) VALUES (?, ?)", [names[name], emb.tolist()]
                    )

    def roster_remove(self, name: str) -> int:
        """Delete every embedding of `name`; returns how many were removed."""
        with self.transaction() as con:
            row = _first(con.execute("SELECT count(*) FROM roster_embeddings WHERE name = ?", [name]))
            con.execute("DELETE FROM roster_embeddings WHERE name = ?", [name])
            return int(row[0]) if row else 0

    def roster_list(self) -> pd.DataFrame:
        """Enrolled names with their number of embeddings and enrolment time."""
        return self.query_df(
            "SELECT name, count(*) AS photos, min(added_at) AS added_at FROM roster_embeddings "
            "GROUP BY name ORDER BY name"
        )

    def roster_size(self) -> int:
        """Enrolled names."""
        return int(self.query_df("SELECT count(DISTINCT name) AS n FROM roster_embeddings")["n"][0])

    def roster(self) -> dict[str, np.ndarray]:
        """name -> (k, D) embeddings."""
        df = self.query_df("SELECT name, embedding FROM roster_embeddings ORDER BY name, added_at")
        return {
            name: np.stack([np.asarray(e, dtype=np.float32) for e in group["embedding"]])
            for name, group in df.groupby("name", sort=True)
        }

    # -- identity and attention (written when an analysis finishes) ------------------------------
    def add_student_embeddings(self, lecture_id: int, sums: dict[int, tuple[np.ndarray, int]]) -> None:
        """Accumulate per-student embedding sums: student id -> (sum of embeddings, count)."""
        with self.transaction() as con:
            self._check_owner(con, lecture_id)
            for sid, (total, n) in sums.items():
                row = _first(
                    con.execute(
                        "SELECT embedding, embedding_n FROM students WHERE lecture_id = ? AND student_id = ?",
                        [lecture_id, sid],
                    )
                )
                if row is None:
                    continue
                prev = np.asarray(row[0], dtype=np.float32) if row[0] is not None else 0
                con.execute(
                    "UPDATE students SET embedding = ?, embedding_n = ? WHERE lecture_id = ? AND student_id = ?",
                    [(prev + total).astype(np.float32).tolist(), int(row[1] or 0) + n, lecture_id, sid],
                )

    def student_embeddings(self, lecture_id: int) -> dict[int, np.ndarray]:
        """Student id -> mean embedding (not normalised) for students that have one."""
        df = self.query_df(
            "SELECT student_id, embedding, embedding_n FROM students WHERE lecture_id = ? "
            "AND embedding IS NOT NULL AND embedding_n > 0",
            [lecture_id],
        )
        return {int(r.student_id): np.asarray(r.embedding, dtype=np.float32) / r.embedding_n for r in df.itertuples()}

    def finish_identities(self, lecture_id: int, merge: dict[int, int], names: dict[int, str | None]) -> None:
        """Merge split tracks, set roster names, renumber anonymous labels, forget embeddings.

        Args:
            merge: student id -> representative student id (identity for kept students).
            names: representative student id -> enrolled name or None (anonymous).
        """
        with self.transaction() as con:
            self._check_owner(con, lecture_id)
            for sid, rep in merge.items():
                if sid == rep:
                    continue
                # A merged track is never present together with its representative (checked by the
                # caller): where one is absent the other's present row wins; ON CONFLICT guards the key.
                con.execute(
                    "DELETE FROM observations r WHERE r.lecture_id = ? AND r.student_id = ? "
                    "AND NOT coalesce(r.present, true) AND EXISTS (SELECT 1 FROM observations o WHERE "
                    "o.lecture_id = r.lecture_id AND o.student_id = ? AND o.frame_index = r.frame_index "
                    "AND coalesce(o.present, true))",
                    [lecture_id, rep, sid],
                )
                con.execute(
                    "INSERT INTO observations SELECT * REPLACE (? AS student_id) FROM observations "
                    "WHERE lecture_id = ? AND student_id = ? ON CONFLICT DO NOTHING",
                    [rep, lecture_id, sid],
                )
                con.execute("DELETE FROM observations WHERE lecture_id = ? AND student_id = ?", [lecture_id, sid])
                con.execute("DELETE FROM students WHERE lecture_id = ? AND student_id = ?", [lecture_id, sid])
                # The merged student's first appearance may be earlier than the representative's.
                con.execute(
                    "DELETE FROM observations r WHERE lecture_id = ? AND student_id = ? "
                    "AND NOT coalesce(present, true) AND t < (SELECT min(t) FROM observations "
                    "WHERE lecture_id = ? AND student_id = ? AND coalesce(present, true))",
                    [lecture_id, rep, lecture_id, rep],
                )
            rows = con.execute(
                "SELECT student_id FROM students WHERE lecture_id = ? ORDER BY first_t, student_id", [lecture_id]
            ).fetchall()
            k = 0
            for (sid,) in rows:
                name = names.get(int(sid))
                if name is None:
                    k += 1
                con.execute(
                    "UPDATE students SET label = ?, identity = ? WHERE lecture_id = ? AND student_id = ?",
                    [name if name else f"Student {k}", name, lecture_id, sid],
                )
            con.execute("UPDATE students SET embedding = NULL, embedding_n = NULL WHERE lecture_id = ?", [lecture_id])

    def set_attention(self, lecture_id: int, values: pd.DataFrame, front: tuple[float, float, bool] | None) -> None:
        """Write attention (columns student_id, frame_index, attention) and the lecture's front."""
        with self.transaction() as con:
            self._check_owner(con, lecture_id)
            con.register("att", values[["student_id", "frame_index", "attention"]])
            con.execute(
                "UPDATE observations o SET attention = att.attention FROM att "
                "WHERE o.lecture_id = ? AND o.student_id = att.student_id AND o.frame_index = att.frame_index",
                [lecture_id],
            )
            con.unregister("att")
            if front is not None:
                con.execute(
                    "UPDATE lectures SET front_yaw = ?, front_pitch = ?, front_learnt = ? WHERE lecture_id = ?",
                    [front[0], front[1], front[2], lecture_id],
                )

    def count_students(self, lecture_id: int) -> int:
        with self.connect() as con:
            row = _first(con.execute("SELECT count(*) FROM students WHERE lecture_id = ?", [lecture_id]))
            return int(row[0]) if row else 0

    def count_observations(self, lecture_id: int) -> int:
        with self.connect() as con:
            row = _first(con.execute("SELECT count(*) FROM observations WHERE lecture_id = ?", [lecture_id]))
            return int(row[0]) if row else 0


def _lecture_row(
    file_name: str,
    sha256: str | None,
    settings_key: str,
    sample_fps: float,
    duration_s: float | None,
    frame_rate: float | None,
    width: int | None,
    height: int | None,
    source: str = "file",
    status: str = "pending",
) -> dict[str, object]:
    """Column -> value of a new `lectures` row."""
    return {
        "file_name": file_name, "sha256": sha256, "source": source, "duration_s": duration_s,
        "frame_rate": frame_rate, "width": width, "height": height, "sample_fps": sample_fps,
        "settings": settings_key, "status": status,
    }  # fmt: skip


def _worker_alive(worker: str | None, heartbeat_age_s: float | None, timeout_s: float = HEARTBEAT_STALE_S) -> bool:
    """Whether the run that claimed a lecture may still be going.

    On this machine the process table decides, whatever the heartbeat: a run of this process is
    alive while its claim is held; another process is alive while it exists and is the same
    process (its start time matches, so a reused pid does not count). On another machine, a run
    is presumed alive while its heartbeat (refreshed at every committed batch) is recent.
    """
    if not worker:
        return False
    host, _, rest = worker.partition(":")
    parts = rest.split(":")
    if host == socket.gethostname() and parts and parts[0].isdigit():
        pid = int(parts[0])
        if pid == os.getpid():
            with _LIVE_CLAIMS_GUARD:
                return worker in _LIVE_CLAIMS
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        started = parts[1] if len(parts) >= 3 else None
        return started in (None, "-") or started == (_process_start(pid) or started)
    return heartbeat_age_s is not None and heartbeat_age_s <= timeout_s


def _process_start(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (Linux), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _process_identity() -> str:
    """host:pid:start of this process (start = '-' where the OS does not tell)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid()) or '-'}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def check_db_path(path: str | Path) -> Path:
    """The database path if it can be a local ClassLens file.

    Raises:
        NotAClassLensDatabase: empty, `:memory:`, an address (`md:`, `s3://`, ...), a folder,
            under a file, or an existing file that is not a DuckDB database.
    """
    text = str(path).strip()
    if not text:
        raise NotAClassLensDatabase("No database file was given.")
    if text.startswith(":memory:") or text == ":memory":
        raise NotAClassLensDatabase(
            f"{text}: an in-memory database would lose every result; give a file such as data/classlens.duckdb."
        )
    if _URL_LIKE.match(text):
        raise NotAClassLensDatabase(
            f"{text}: only a local database file can be used, not an address (md:, s3://, http://, ...)."
        )
    p = Path(text).expanduser()
    if p.is_dir():
        raise NotAClassLensDatabase(f"{p}: is a folder; give a database file inside it, e.g. {p / 'classlens.duckdb'}.")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotAClassLensDatabase(f"Cannot create the database {p}: {parent} is a file, not a folder.")
            break
    if not p.exists() and p.suffix.lower() in (".sqlite", ".sqlite3", ".db3"):
        raise NotAClassLensDatabase(f"{p}: ClassLens keeps its data in DuckDB, not SQLite; use a .duckdb file name.")
    if p.is_file():
        try:
            with open(p, "rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise NotAClassLensDatabase(f"Cannot read the database {p}: {exc.strerror or exc}.") from exc
        if head.startswith(_SQLITE_MAGIC):
            raise NotAClassLensDatabase(f"{p}: is an SQLite database, not a DuckDB file; it was left untouched.")
        elif head and head[8:12] != _DUCKDB_MAGIC:
            raise NotAClassLensDatabase(f"{p}: is not a DuckDB database file; it was left untouched.")
    return p


def observations_frame(lecture_id: int, students: list[StudentObservation]) -> pd.DataFrame:
    """Student observations -> a DataFrame with exactly `OBSERVATION_COLUMNS` (nullable where unset)."""
    n = len(students)
    faces = [s.face for s in students]
    nan4 = (np.nan, np.nan, np.nan, np.nan)
    boxes = np.array([f.box if f is not None else nan4 for f in faces], dtype=np.float32).reshape(n, 4)
    sboxes = np.array([s.box if s.box is not None else nan4 for s in students], dtype=np.float32).reshape(n, 4)
    probs = np.full((n, len(EMOTIONS)), np.nan, dtype=np.float32)
    dominant: list[str | None] = [None] * n
    conf = np.full(n, np.nan, dtype=np.float32)
    for i, f in enumerate(faces):
        if f is not None and f.emotion_probs is not None:
            probs[i] = f.emotion_probs
            d = f.dominant_emotion
            assert d is not None
            dominant[i], conf[i] = d

    def opt(values: list[float | None]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float32)

    def flag(values: list[bool | None]) -> pd.array:
        return pd.array(values, dtype="boolean")

    data: dict[str, object] = {
        "lecture_id": np.full(n, lecture_id, dtype=np.int32),
        "student_id": np.array([s.track_id for s in students], dtype=np.int32),
        "t": np.array([s.t for s in students], dtype=np.float64),
        "frame_index": np.array([s.frame_index for s in students], dtype=np.int32),
        "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
        "det_score": opt([None if f is None else f.det_score for f in faces]),
    }  # fmt: skip
    for j, col in enumerate(EMOTION_COLUMNS):
        data[col] = probs[:, j]
    data["dominant_emotion"] = pd.array(dominant, dtype="string")
    data["dominant_conf"] = conf
    for col in ("yaw", "pitch", "roll", "eyes_open", "gaze_x", "gaze_y"):
        data[col] = opt([None if f is None else getattr(f, col) for f in faces])
    data["attention"] = opt([s.attention for s in students])
    data["present"] = flag([s.present for s in students])
    data["face_visible"] = flag([s.face_visible for s in students])
    data["head_down"] = flag([s.head_down for s in students])
    data["head_turned"] = flag([s.head_turned for s in students])
    data["hand_raised"] = flag([s.hand_raised for s in students])
    data["posture"] = pd.array([s.posture for s in students], dtype="string")
    data["sx1"], data["sy1"], data["sx2"], data["sy2"] = sboxes[:, 0], sboxes[:, 1], sboxes[:, 2], sboxes[:, 3]
    data["person_score"] = opt([s.person_score for s in students])
    data["face_change"] = opt([s.face_change for s in students])
    df = pd.DataFrame(data)
    # NaN would be stored as a float NaN; nullable dtypes store SQL NULL for "not measured".
    nullable = [
        "x1", "y1", "x2", "y2", "det_score", *EMOTION_COLUMNS, "dominant_conf", "yaw", "pitch", "roll",
        "eyes_open", "gaze_x", "gaze_y", "attention", "sx1", "sy1", "sx2", "sy2", "person_score", "face_change",
    ]  # fmt: skip
    return df.astype({c: "Float32" for c in nullable})
