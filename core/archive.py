"""The archive of a batch run (core.batch): a DuckDB file of views over a folder of Parquet files.

`DIR/archive.duckdb` holds views named like the app's tables (`lectures`, `students`,
`observations`) over `DIR/<table>/*.parquet`, real (empty) tables for everything else the app
reads (reports, roster), a `schema_version` table and the `classlens_archive` marker table. A
`Store` that finds the marker opens the file read-only: no migration, no writes (a write raises
a clear error, and the pages that write say so instead of offering it).

Each view is the current schema's empty table `UNION ALL BY NAME` the Parquet files, so a column
added by a later schema version reads as NULL in lectures analysed before it, and the extra batch
columns of `lectures` (path, analysis_s, batch_worker) come through as they are.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from core.store import ARCHIVE_MARKER, SCHEMA_VERSION, Store

ARCHIVE_FILE = "archive.duckdb"
MARKER_TABLE = ARCHIVE_MARKER  # Store opens a file with this table (and schema_version) read-only
DATA_TABLES = ("lectures", "students", "observations")


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
