"""Stored reports: each generated report is kept with its lecture (writer, model, time, text)."""

from __future__ import annotations

import pandas as pd

from core.store import Store


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
