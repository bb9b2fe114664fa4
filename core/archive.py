"""The archive of a batch run (core.batch): a DuckDB file of views over a folder of Parquet files.

`DIR/archive.duckdb` holds views named like the app's tables (`lectures`, `students`,
`observations`) over `DIR/<table>/*.parquet`, real (empty) tables for everything else the app
reads (reports, roster), a `schema_version` table and the `classlens_archive` marker table. A
`Store` that finds the marker opens the file read-only: no migration, no writes (writes raise
`ReadOnlyArchive`, and the pages that write say so instead of offering it).

Each view is the current schema's empty table `UNION ALL BY NAME` the Parquet files, so a column
added by a later schema version reads as NULL in lectures analysed before it, and the extra batch
columns of `lectures` (path, analysis_s, batch_worker) come through as they are.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from core.errors import ClassLensError

ARCHIVE_FILE = "archive.duckdb"
MARKER_TABLE = "classlens_archive"
DATA_TABLES = ("lectures", "students", "observations")


class ReadOnlyArchive(ClassLensError):
    """A write was attempted on an archive built by `python -m core batch`."""


_KNOWN: dict[tuple[str, int, int], bool] = {}
_KNOWN_GUARD = threading.Lock()


def is_archive(path: str | Path) -> bool:
    """Whether `path` is a DuckDB file with the archive marker table.

    Archives are only ever written under a temporary name and renamed, so a file that cannot be
    opened read-only right now (another process writes it, or it is not DuckDB) is not one. The
    answer is remembered per file (path and inode, which a rebuilt archive changes), so a file is
    probed once per process: a read-only probe while another thread of this process opens the
    same file read-write would make DuckDB refuse that thread ("different configuration").
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return False
    if not path.is_file():
        return False
    key = (str(path.resolve()), st.st_dev, st.st_ino)
    with _KNOWN_GUARD:
        if key not in _KNOWN:
            _KNOWN[key] = _probe(path)
        return _KNOWN[key]


def _probe(path: Path) -> bool:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False
    try:
        row = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [MARKER_TABLE]
        ).fetchone()
        return bool(row and row[0])
    except duckdb.Error:
        return False
    finally:
        con.close()


def check_version(path: str | Path, schema_version: int) -> None:
    """Refuse an archive whose views are of another schema version than this code's.

    Raises:
        ClassLensError: with the command that rebuilds the views (a rerun skips every lecture).
    """
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        src = con.execute(f"SELECT out_dir FROM {MARKER_TABLE} LIMIT 1").fetchone()
    finally:
        con.close()
    version = int(row[0]) if row and row[0] is not None else 0
    if version != schema_version:
        where = src[0] if src else Path(path).parent
        raise ClassLensError(
            f"The archive {Path(path).name} was built for schema {version}, this ClassLens reads schema "
            f"{schema_version}. Rebuild its views with `python -m core batch <the same sources> --out {where}` "
            "(finished lectures are skipped)."
        )


def read_only_error(path: str | Path) -> ReadOnlyArchive:
    return ReadOnlyArchive(
        f"{Path(path).name} is a read-only archive of a batch run: analyse, delete or enrol with "
        "`python -m core batch` or on a normal database (unset CLASSLENS_DB)."
    )


def parquet_glob(out_uri: str, table: str) -> str:
    """The Parquet files of one table under DIR (a local folder or a filesystem URI)."""
    return f"{out_uri.rstrip('/')}/{table}/*.parquet"


def build(out_uri: str, tables_with_files: set[str], local_dir: Path | None) -> Path:
    """Write the archive file for DIR and return where it lies locally.

    Args:
        out_uri: DIR as DuckDB reads it: an absolute local folder or a URI (s3://…, which the
            reader's DuckDB opens through its httpfs extension).
        tables_with_files: the data tables that have at least one Parquet file (a view over an
            empty glob would fail to open, so those are views over the empty schema table).
        local_dir: where to write it (DIR itself when local); None = a temporary folder (the
            caller uploads the file to DIR).

    Returns:
        The archive file; when `local_dir` is given it is `local_dir/archive.duckdb`, replaced
        atomically (written under a temporary name, then renamed).
    """
    from core.store import SCHEMA_VERSION, Store

    folder = local_dir or Path(tempfile.mkdtemp(prefix="classlens-archive-"))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{ARCHIVE_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    Store(tmp)  # the full current schema: roster, reports, schema_version, …
    con = duckdb.connect(str(tmp))
    try:
        for table in DATA_TABLES:
            con.execute(f"CREATE TABLE _schema_{table} AS SELECT * FROM {table} LIMIT 0")
            con.execute(f"DROP TABLE {table}")
            sql = f"SELECT * FROM _schema_{table}"
            if table in tables_with_files:
                glob = parquet_glob(out_uri, table).replace("'", "''")
                sql += f" UNION ALL BY NAME SELECT * FROM read_parquet('{glob}', union_by_name = true)"
                if table == "lectures":  # deleted by the retention period (core.batch.expire_lectures)
                    sql += " WHERE status <> 'expired'"
            con.execute(f"CREATE VIEW {table} AS {sql}")
        con.execute(f"CREATE TABLE {MARKER_TABLE} (built_at TIMESTAMP, out_dir VARCHAR, schema_version INTEGER)")
        con.execute(
            f"INSERT INTO {MARKER_TABLE} VALUES (?, ?, ?)",
            [datetime.now(UTC).replace(tzinfo=None), out_uri, SCHEMA_VERSION],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    final = folder / ARCHIVE_FILE
    os.replace(tmp, final)
    return final
