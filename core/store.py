"""DuckDB store: schema with migrations, lectures, students and observations (the one writer).

Connections are short-lived: each operation opens the file, works in one transaction and closes
it, so two processes (the app and a CLI run, or two CLI runs) can take turns on one database
file. A process that finds the file locked by another waits and retries, then gives up with a
clear `DatabaseBusy` message. Within one process, DuckDB shares the database between threads.
No video frames or face crops are ever stored.
"""

from __future__ import annotations

import contextlib
import json
import os
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
from core.faces import EMOTIONS, FaceObservation
from core.track import TrackState

SCHEMA_VERSION = 3
EMOTION_COLUMNS = tuple(f"p_{e}" for e in EMOTIONS)
OBSERVATION_COLUMNS = (
    "lecture_id", "student_id", "t", "frame_index", "x1", "y1", "x2", "y2", "det_score",
    *EMOTION_COLUMNS, "dominant_emotion", "dominant_conf",
    "yaw", "pitch", "roll", "eyes_open", "gaze_x", "gaze_y", "attention",
)  # fmt: skip
HEARTBEAT_STALE_S = 60.0


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
        path: database file (created with its folder if missing).
        lock_timeout_s: how long to wait for another process that holds the file.
    """

    def __init__(self, path: str | Path, lock_timeout_s: float = 120.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.migrate()

    # -- connections -------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh connection; waits while another process holds the file lock."""
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise ClassLensError(f"Cannot open the database {self.path}: {exc}") from exc
                if time.monotonic() > deadline:
                    raise DatabaseBusy(
                        f"The database {self.path.name} is in use by another program "
                        f"(waited {self.lock_timeout_s:.0f} s). Try again when it has finished."
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN/COMMIT (ROLLBACK on any error)."""
        with self.connect() as con:
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
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = _first(con.execute("SELECT max(version) FROM schema_version"))
            return int(row[0]) if row and row[0] is not None else 0

    def migrate(self) -> None:
        """Bring the file to `SCHEMA_VERSION`, one transaction per step."""
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise ClassLensError(
                f"{self.path.name} was written by a newer ClassLens (schema {version} > {SCHEMA_VERSION})."
            )
        for step in range(version, SCHEMA_VERSION):
            with self.transaction() as con:
                con.execute(MIGRATIONS[step])
                con.execute("DELETE FROM schema_version")
                con.execute("INSERT INTO schema_version VALUES (?)", [step + 1])

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

    def claim(self, lecture_id: int) -> None:
        """Mark the lecture as being analysed by this process.

        Raises:
            LectureBusy: another live process is analysing it (its heartbeat is recent).
        """
        try:
            with self.transaction() as con:
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
                if status == "running" and worker != self.worker and _worker_alive(worker, age):
                    raise LectureBusy(
                        "This lecture is being analysed right now in another window or process; "
                        "its results will appear when that run finishes."
                    )
                con.execute(
                    "UPDATE lectures SET status = 'running', worker = ?, heartbeat_at = current_timestamp, "
                    "updated_at = current_timestamp, error = NULL WHERE lecture_id = ?",
                    [self.worker, lecture_id],
                )
        except duckdb.TransactionException as exc:
            raise LectureBusy("This lecture was claimed by another run a moment ago.") from exc

    def heartbeat(self, lecture_id: int) -> None:
        """Tell other processes this lecture's run is still going (no rows to append right now)."""
        with self.transaction() as con:
            con.execute("UPDATE lectures SET heartbeat_at = current_timestamp WHERE lecture_id = ?", [lecture_id])

    def abandoned_live_lectures(self) -> list[int]:
        """Live lectures still marked running whose session is gone (closed tab, stopped server)."""
        df = self.query_df(
            "SELECT lecture_id, worker, epoch(current_timestamp::TIMESTAMP - heartbeat_at) AS age "
            "FROM lectures WHERE source = 'live' AND status = 'running'"
        )
        return [
            int(r.lecture_id)
            for r in df.itertuples()
            if not _worker_alive(r.worker, None if pd.isna(r.age) else float(r.age))
        ]

    def set_status(
        self, lecture_id: int, status: str, *, error: str | None = None, warnings: list[str] | None = None
    ) -> None:
        with self.transaction() as con:
            con.execute(
                "UPDATE lectures SET status = ?, error = ?, warnings = coalesce(?, warnings), "
                "worker = NULL, updated_at = current_timestamp WHERE lecture_id = ?",
                [status, error, json.dumps(warnings) if warnings is not None else None, lecture_id],
            )

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
    def track_state(self, lecture_id: int) -> tuple[list[TrackState], int]:
        """Each student's last committed box and time, and the next free student id, to continue
        tracking after a restart."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT student_id, x1, y1, x2, y2, t FROM ("
                " SELECT *, row_number() OVER (PARTITION BY student_id ORDER BY t DESC) AS rn"
                " FROM observations WHERE lecture_id = ?) WHERE rn = 1",
                [lecture_id],
            ).fetchall()
            row = _first(
                con.execute("SELECT coalesce(max(student_id), 0) + 1 FROM students WHERE lecture_id = ?", [lecture_id])
            )
        states = [TrackState(int(r[0]), (r[1], r[2], r[3], r[4]), float(r[5])) for r in rows]
        return states, int(row[0]) if row else 1

    # -- observations --------------------------------------------------------------------------
    def append(
        self,
        lecture_id: int,
        faces: list[FaceObservation],
        *,
        progress_t: float,
        frames_sampled: int,
        new_students: dict[int, float] | None = None,
    ) -> None:
        """Commit one batch of observations and the progress marker in one transaction.

        Args:
            faces: observations with `track_id` set (track id = student id).
            progress_t: time of the last sampled frame covered by this batch (resume point).
            frames_sampled: total sampled frames so far.
            new_students: track id -> first time, for tracks first seen in this batch.
        """
        with self.transaction() as con:
            if new_students:
                start = _first(con.execute("SELECT count(*) FROM students WHERE lecture_id = ?", [lecture_id]))
                n0 = int(start[0]) if start else 0
                students = pd.DataFrame(
                    {
                        "lecture_id": lecture_id,
                        "student_id": list(new_students),
                        "label": [f"Student {n0 + i + 1}" for i in range(len(new_students))],
                        "identity": None,
                        "first_t": list(new_students.values()),
                    }
                )
                con.register("new_students", students)
                con.execute(
                    "INSERT INTO students (lecture_id, student_id, label, identity, first_t) "
                    "SELECT lecture_id, student_id, label, identity::VARCHAR, first_t "
                    "FROM new_students ON CONFLICT DO NOTHING"
                )
                con.unregister("new_students")
            if faces:
                df = observations_frame(lecture_id, faces)
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
            con.execute("DELETE FROM observations WHERE lecture_id = ? AND t > ?", [lecture_id, t])
            con.execute(
                "DELETE FROM students s WHERE lecture_id = ? AND NOT EXISTS (SELECT 1 FROM observations o "
                "WHERE o.lecture_id = s.lecture_id AND o.student_id = s.student_id)",
                [lecture_id],
            )

    # -- roster --------------------------------------------------------------------------------
    def roster_add(self, name: str, embeddings: np.ndarray, *, replace: bool = False) -> None:
        """Enrol `name` with (k, 512) face embeddings (only embeddings, never photos); with
        `replace`, the name's earlier embeddings are removed in the same transaction."""
        name = name.strip()
        if not name:
            raise ClassLensError("A roster name cannot be empty.")
        with self.transaction() as con:
            if replace:
                con.execute("DELETE FROM roster_embeddings WHERE name = ?", [name])
            for emb in np.asarray(embeddings, dtype=np.float32).reshape(len(embeddings), -1):
                con.execute("INSERT INTO roster_embeddings (name, embedding) VALUES (?, ?)", [name, emb.tolist()])

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
            for sid, rep in merge.items():
                if sid == rep:
                    continue
                # A merged track never overlaps its representative in time (checked by the caller);
                # ON CONFLICT guards the primary key anyway.
                con.execute(
                    "INSERT INTO observations SELECT * REPLACE (? AS student_id) FROM observations "
                    "WHERE lecture_id = ? AND student_id = ? ON CONFLICT DO NOTHING",
                    [rep, lecture_id, sid],
                )
                con.execute("DELETE FROM observations WHERE lecture_id = ? AND student_id = ?", [lecture_id, sid])
                con.execute("DELETE FROM students WHERE lecture_id = ? AND student_id = ?", [lecture_id, sid])
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


def _worker_alive(worker: str | None, heartbeat_age_s: float | None) -> bool:
    """Whether the run that last claimed a lecture may still be going.

    A run on this machine whose process is gone (killed, crashed) is dead at once; otherwise a
    run is presumed alive while its heartbeat (refreshed at every committed batch) is recent.
    """
    if not worker or heartbeat_age_s is None or heartbeat_age_s > HEARTBEAT_STALE_S:
        return False
    host, _, rest = worker.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host == socket.gethostname() and pid_text.isdigit():
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def observations_frame(lecture_id: int, faces: list[FaceObservation]) -> pd.DataFrame:
    """Observations -> a DataFrame with exactly `OBSERVATION_COLUMNS` (nullable where unset)."""
    n = len(faces)
    boxes = np.array([f.box for f in faces], dtype=np.float32).reshape(n, 4)
    probs = np.full((n, len(EMOTIONS)), np.nan, dtype=np.float32)
    dominant: list[str | None] = [None] * n
    conf = np.full(n, np.nan, dtype=np.float32)
    for i, f in enumerate(faces):
        if f.emotion_probs is not None:
            probs[i] = f.emotion_probs
            d = f.dominant_emotion
            assert d is not None
            dominant[i], conf[i] = d

    def opt(values: list[float | None]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float32)

    data: dict[str, object] = {
        "lecture_id": np.full(n, lecture_id, dtype=np.int32),
        "student_id": np.array([f.track_id for f in faces], dtype=np.int32),
        "t": np.array([f.t for f in faces], dtype=np.float64),
        "frame_index": np.array([f.frame_index for f in faces], dtype=np.int32),
        "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
        "det_score": np.array([f.det_score for f in faces], dtype=np.float32),
    }  # fmt: skip
    for j, col in enumerate(EMOTION_COLUMNS):
        data[col] = probs[:, j]
    data["dominant_emotion"] = pd.array(dominant, dtype="string")
    data["dominant_conf"] = conf
    for col in ("yaw", "pitch", "roll", "eyes_open", "gaze_x", "gaze_y", "attention"):
        data[col] = opt([getattr(f, col) for f in faces])
    df = pd.DataFrame(data)
    # NaN would be stored as a float NaN; nullable dtypes store SQL NULL for "not measured".
    nullable = [*EMOTION_COLUMNS, "dominant_conf", "yaw", "pitch", "roll", "eyes_open", "gaze_x", "gaze_y", "attention"]
    return df.astype({c: "Float32" for c in nullable})
