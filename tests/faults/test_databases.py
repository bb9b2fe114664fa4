"""Issue 17, databases and the command line: ClassLens opens only its own files, never creates one
for a command that reads, never fetches an extension, and every failure is one line, exit 2.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
import time

import duckdb
import pytest

from core.__main__ import main
from core.store import SCHEMA_VERSION, DatabaseBusy, DatabaseMissing, NotAClassLensDatabase, Store
from tests.conftest import ROOT, fixture

PHOTO = "t1.jpg"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`python -m core ...` in this process (no model is loaded before these checks fail)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])


def _foreign(path, with_schema_version: bool = False):  # type: ignore[no-untyped-def]
    """Another application's DuckDB file: its own `lectures` table (and maybe a schema_version)."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE lectures (id INTEGER, title VARCHAR, room VARCHAR)")
    con.execute("INSERT INTO lectures VALUES (1, 'Thermodynamics', 'B12'), (2, 'Optics', 'A3')")
    if with_schema_version:
        con.execute("CREATE TABLE schema_version (version INTEGER)")
        con.execute("INSERT INTO schema_version VALUES (7)")
    con.close()
    return path


@pytest.mark.parametrize("with_schema_version", [False, True], ids=["plain", "own-schema-version"])
def test_a_foreign_duckdb_file_is_refused_and_left_byte_for_byte(tmp_path, capsys, with_schema_version):
    path = _foreign(tmp_path / "other.duckdb", with_schema_version)
    before = path.read_bytes()
    with pytest.raises(NotAClassLensDatabase, match="another program"):
        Store(path)
    code, _, err = run_cli(capsys, "analyze", str(fixture(PHOTO)), "--db", str(path))
    assert_one_line_error(code, err, "other.duckdb", "another program", "untouched")
    code, _, err = run_cli(capsys, "roster", "list", "--db", str(path))
    assert_one_line_error(code, err, "other.duckdb")
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("other.duckdb.wal"))
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM lectures").fetchall() == [(2,)]
    con.close()


def test_a_classlens_archive_opens_read_only_and_untouched(tmp_path, analysed_db):
    """Issue 18's archive: views over Parquet with schema_version and a classlens_archive marker."""
    store, result = analysed_db
    parquet = tmp_path / "observations.parquet"
    with store.connect() as con:
        con.execute(f"COPY (SELECT * FROM observations) TO '{parquet}' (FORMAT parquet)")
    path = tmp_path / "archive.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER)")
    con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
    con.execute("CREATE TABLE classlens_archive (created_at TIMESTAMP)")
    con.execute(f"CREATE VIEW observations AS SELECT * FROM read_parquet('{parquet}')")
    con.close()
    before = path.read_bytes()
    archive = Store(path)
    assert archive.read_only
    assert archive.query_df("SELECT count(*) AS n FROM observations")["n"][0] == result.observations
    with pytest.raises(Exception, match="archive"):
        archive.create_lecture("x.mp4", None, settings_key="{}", sample_fps=1.0)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: ":memory:", [":memory:", "in-memory"]),
        (lambda tmp: "md:classlens", ["md:classlens", "local database file"]),
        (lambda tmp: "s3://bucket/classlens.duckdb", ["s3://", "local database file"]),
        (lambda tmp: str(_sqlite(tmp / "lectures.sqlite")), ["lectures.sqlite", "SQLite"]),
        (lambda tmp: str(_sqlite(tmp / "lectures.duckdb")), ["lectures.duckdb", "SQLite"]),
        (lambda tmp: str(tmp / "new.sqlite"), ["new.sqlite", "not SQLite"]),
        (lambda tmp: str(_text(tmp / "notes.duckdb")), ["notes.duckdb", "not a DuckDB"]),
        (lambda tmp: str(_text(tmp / "file") / "classlens.duckdb"), ["classlens.duckdb", "is a file, not a folder"]),
        (lambda tmp: str(tmp), ["is a folder"]),
    ],
    ids=[
        "memory",
        "motherduck",
        "s3",
        "sqlite",
        "sqlite-named-duckdb",
        "new-sqlite",
        "text-file",
        "parent-is-a-file",
        "folder",
    ],
)
def test_paths_that_are_not_a_classlens_file_fail_in_one_line(tmp_path, capsys, make, words):
    db = make(tmp_path)
    files_before = sorted(p.name for p in tmp_path.iterdir())
    contents = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, _, err = run_cli(capsys, "analyze", str(fixture(PHOTO)), "--db", db)
    assert_one_line_error(code, err, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
    assert all(p.read_bytes() == b for p, b in contents.items())


def _sqlite(path):  # type: ignore[no-untyped-def]
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE lectures (id INTEGER)")
    con.commit()
    con.close()
    return path


def _text(path):  # type: ignore[no-untyped-def]
    path.write_text("not a database\n" * 10)
    return path


def test_duckdb_never_loads_or_installs_an_extension(tmp_path):
    store = Store(tmp_path / "c.duckdb")
    with store.connect() as con:
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() "
                "WHERE name IN ('autoload_known_extensions', 'autoinstall_known_extensions')"
            ).fetchall()
        )
    assert settings == {"autoload_known_extensions": "false", "autoinstall_known_extensions": "false"}


@pytest.mark.parametrize(
    "argv",
    [["report", "--lecture", "1", "--writer", "rules"], ["roster", "list"], ["roster", "remove", "Ana"]],
    ids=["report", "roster-list", "roster-remove"],
)
def test_read_commands_never_create_a_database(tmp_path, capsys, argv):
    db = tmp_path / "missing" / "classlens.duckdb"
    code, _, err = run_cli(capsys, *argv, "--db", str(db))
    assert_one_line_error(code, err, str(db), "no ClassLens database")
    assert not db.exists() and not db.parent.exists()
    with pytest.raises(DatabaseMissing):
        Store(db, create=False)


def test_report_out_into_a_missing_folder_fails_before_saving(tmp_path, capsys, analysed_db):
    store, result = analysed_db
    db = tmp_path / "c.duckdb"
    shutil.copy(store.path, db)
    out = tmp_path / "nowhere" / "report.md"
    code, _, err = run_cli(
        capsys, "report", "--lecture", str(result.lecture_id), "--writer", "rules", "--out", str(out), "--db", str(db)
    )
    assert_one_line_error(code, err, str(out.parent), "does not exist")
    assert Store(db).query_df("SELECT count(*) AS n FROM reports")["n"][0] == 0  # nothing saved
    code, text, _ = run_cli(
        capsys, "report", "--lecture", str(result.lecture_id), "--writer", "rules", "--out", str(tmp_path / "r.md"),
        "--db", str(db),
    )  # fmt: skip
    assert code == 0 and (tmp_path / "r.md").read_text().strip() == text.strip()


def test_a_held_lock_gives_up_when_it_says_and_the_run_can_resume(tmp_path):
    """Another program holds the file: the wait ends after lock_timeout_s and says how long it
    waited; the run's final status write does not wait a second full timeout."""
    from tests.test_store import _face, students_of

    db = tmp_path / "locked.duckdb"
    store = Store(db, lock_timeout_s=1.0)
    lid = store.create_lecture("a.mp4", "x", settings_key="{}", sample_fps=1.0)
    store.claim(lid)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(DatabaseBusy) as busy:
            store.append(
                lid, students_of([_face(0.0, 1, "happy", 0.9)]), progress_t=0.0, frames_sampled=1, new_students={1: 0.0}
            )
        waited = time.monotonic() - t0
        said = float(re.search(r"waited (\d+) s", str(busy.value)).group(1))  # type: ignore[union-attr]
        assert abs(said - waited) <= 1.0 and 1.0 <= waited < 3.0, (said, waited)
        t0 = time.monotonic()
        store.set_status(lid, "failed", error=str(busy.value))  # cannot be written: left, briefly tried
        assert time.monotonic() - t0 < 6.5
    finally:
        holder.communicate("", timeout=30)
    # The lock is gone and the run is over: a rerun takes the lecture over at once and resumes.
    again = Store(db, lock_timeout_s=5)
    assert again.lecture(lid).status == "running"
    again.claim(lid)
    again.append(
        lid, students_of([_face(0.0, 1, "happy", 0.9)]), progress_t=0.0, frames_sampled=1, new_students={1: 0.0}
    )
    again.set_status(lid, "complete")
    assert again.count_observations(lid) == 1 and again.lecture(lid).status == "complete"
