"""Read-only queries: DuckDB -> DataFrames and strings for views, exports and reports.

All summaries come from the database, never from in-memory pipeline state. Each observation
stands for one sampling interval (1 / sample_fps seconds) of its student's time in view.
"""

from __future__ import annotations

import pandas as pd

from core.faces import EMOTIONS
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
    """Students of a lecture with minutes in view and observation counts, in label order."""
    return store.query_df(
        "SELECT s.student_id, s.label AS student, s.identity, s.first_t, count(o.t) AS observations, "
        "count(o.t) / any_value(l.sample_fps) / 60.0 AS minutes_seen, avg(o.attention) AS attention "
        "FROM students s JOIN lectures l USING (lecture_id) "
        "LEFT JOIN observations o USING (lecture_id, student_id) "
        "WHERE s.lecture_id = ? GROUP BY ALL ORDER BY s.student_id",
        [lecture_id],
    )


def emotion_summary(store: Store, lecture_id: int) -> pd.DataFrame:
    """Per student and dominant emotion: minutes (observations x sampling interval / 60) and the
    mean confidence of that emotion while it was dominant. Long format, biggest minutes first."""
    return store.query_df(
        "SELECT s.student_id, s.label AS student, o.dominant_emotion AS emotion, "
        "count(*) AS observations, count(*) / any_value(l.sample_fps) / 60.0 AS minutes, "
        "avg(o.dominant_conf) AS mean_confidence "
        "FROM observations o JOIN students s USING (lecture_id, student_id) "
        "JOIN lectures l USING (lecture_id) "
        "WHERE o.lecture_id = ? AND o.dominant_emotion IS NOT NULL "
        "GROUP BY ALL ORDER BY s.student_id, minutes DESC, emotion",
        [lecture_id],
    )


def student_summary(store: Store, lecture_id: int) -> pd.DataFrame:
    """One row per student: minutes seen, mean attention, and per emotion its share of the
    student's observations, minutes and mean confidence (columns `<emotion>_share`,
    `<emotion>_minutes`, `<emotion>_confidence`)."""
    base = students(store, lecture_id)
    emo = emotion_summary(store, lecture_id)
    if base.empty:
        return base
    out = base.set_index("student_id")
    total = out["observations"].where(out["observations"] > 0)
    for e in EMOTIONS:
        sub = emo[emo["emotion"] == e].set_index("student_id")
        out[f"{e}_share"] = (sub["observations"] / total).reindex(out.index).fillna(0.0)
        out[f"{e}_minutes"] = sub["minutes"].reindex(out.index).fillna(0.0)
        out[f"{e}_confidence"] = sub["mean_confidence"].reindex(out.index)
    return out.reset_index()


def report_input(store: Store, lecture_id: int) -> str:
    """The seed's report input string, e.g.
    `Student 1: happy=0.80 (5.00min); sad=0.10 (1.00min) | Student 2: ...`

    For each student (label order) each observed dominant emotion with its mean confidence and
    minutes, most minutes first; with attention measured, `attention=0.72; ` leads the entry.
    """
    emo = emotion_summary(store, lecture_id)
    studs = students(store, lecture_id)
    parts = []
    for _, s in studs.iterrows():
        items = []
        if pd.notna(s["attention"]):
            items.append(f"attention={s['attention']:.2f}")
        rows = emo[emo["student_id"] == s["student_id"]]
        items += [f"{r.emotion}={r.mean_confidence:.2f} ({r.minutes:.2f}min)" for r in rows.itertuples()]
        name = s["identity"] if isinstance(s["identity"], str) and s["identity"] else s["student"]
        parts.append(f"{name}: {'; '.join(items)}")
    return " | ".join(parts)


def lecture_row(store: Store, lecture_id: int) -> pd.Series:
    df = store.query_df("SELECT * FROM lectures WHERE lecture_id = ?", [lecture_id])
    return df.iloc[0]


def attention_per_minute(store: Store, lecture_id: int) -> pd.DataFrame:
    """Per student and minute of the lecture: attention with absent samples counted as 0.

    Columns: student_id, student, minute (0-based), samples (observations in the minute),
    expected (sampling slots in the minute), attention (sum of attention / expected).
    """
    return store.query_df(
        "WITH l AS (SELECT sample_fps, coalesce(nullif(duration_s, 0), 1 / sample_fps) AS dur "
        "           FROM lectures WHERE lecture_id = $1), "
        "minutes AS (SELECT unnest(range(0, CAST(ceil((SELECT dur FROM l) / 60) AS BIGINT))) AS minute), "
        "per AS (SELECT student_id, CAST(floor(t / 60) AS BIGINT) AS minute, count(*) AS samples, "
        "        sum(coalesce(attention, 0)) AS att FROM observations WHERE lecture_id = $1 GROUP BY ALL) "
        "SELECT s.student_id, s.label AS student, m.minute, coalesce(p.samples, 0) AS samples, "
        "  greatest(1, ceil(least(60, (SELECT dur FROM l) - m.minute * 60) * (SELECT sample_fps FROM l))) AS expected, "
        "  least(1.0, coalesce(p.att, 0) / greatest(1, ceil(least(60, (SELECT dur FROM l) - m.minute * 60) "
        "    * (SELECT sample_fps FROM l)))) AS attention "
        "FROM students s CROSS JOIN minutes m "
        "LEFT JOIN per p ON p.student_id = s.student_id AND p.minute = m.minute "
        "WHERE s.lecture_id = $1 ORDER BY s.student_id, m.minute",
        [lecture_id],
    )
