"""Read-only queries of the store: DuckDB -> DataFrames for metrics, views, exports and reports.

Every SQL statement outside core/store.py lives here (pages and report code hold none). Figures
are not computed here: core/metrics.py defines them from these rows.
"""

from __future__ import annotations

import pandas as pd

from core.errors import LectureNotFound
from core.store import OBSERVATION_COLUMNS, Store


def observations(store: Store, lecture_id: int) -> pd.DataFrame:
    """Every observation of a lecture with the student's label, ordered by time then student."""
    cols = ", ".join(f"o.{c}" for c in OBSERVATION_COLUMNS if c != "lecture_id")
    return store.query_df(
        f"SELECT o.lecture_id, s.label AS student, {cols} FROM observations o "
        "JOIN students s USING (lecture_id, student_id) WHERE o.lecture_id = ? "
        "ORDER BY o.t, o.student_id",
        [lecture_id],
    )


def students(store: Store, lecture_id: int) -> pd.DataFrame:
    """Students of a lecture (student_id, student = display label, identity, first_t), in id order.

    The label is the one display name: the roster name when matched, else "Student N".
    """
    return store.query_df(
        "SELECT student_id, label AS student, identity, first_t FROM students WHERE lecture_id = ? ORDER BY student_id",
        [lecture_id],
    )


def lecture_row(store: Store, lecture_id: int) -> pd.Series:
    """The `lectures` row of one lecture.

    Raises:
        LectureNotFound: no such lecture.
    """
    df = store.query_df("SELECT * FROM lectures WHERE lecture_id = ?", [lecture_id])
    if df.empty:
        raise LectureNotFound(f"There is no lecture {lecture_id} in {store.path.name}.")
    return df.iloc[0]


def lecture_version(store: Store, lecture_id: int) -> str:
    """A string that changes whenever the lecture's rows change (status, progress, observations)."""
    df = store.query_df(
        "SELECT status, updated_at, frames_sampled, "
        "(SELECT count(*) FROM observations o WHERE o.lecture_id = l.lecture_id) AS n, "
        "(SELECT string_agg(label, ',') FROM students s WHERE s.lecture_id = l.lecture_id) AS labels "
        "FROM lectures l WHERE lecture_id = ?",
        [lecture_id],
    )
    return "" if df.empty else "|".join(str(v) for v in df.iloc[0].tolist())


def save_report(store: Store, lecture_id: int, writer: str, model: str | None, text: str) -> pd.Timestamp:
    """Store one report; returns its creation time (its key within the lecture)."""
    with store.transaction() as con:
        rows = con.execute(
            "INSERT INTO reports (lecture_id, writer, model, text) VALUES (?, ?, ?, ?) RETURNING created_at",
            [lecture_id, writer, model, text],
        ).fetchall()
    return pd.Timestamp(rows[0][0])


def list_reports(store: Store, lecture_id: int) -> pd.DataFrame:
    """Reports of a lecture, newest first: created_at, writer, model, text."""
    return store.query_df(
        "SELECT created_at, writer, model, text FROM reports WHERE lecture_id = ? ORDER BY created_at DESC",
        [lecture_id],
    )
