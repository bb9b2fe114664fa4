"""Exports of one lecture: observations CSV, per-student summary CSV, the seed's JSON document.

Every figure comes from `core.metrics`. In attention-only mode (a lecture analysed without
emotions, or the teacher's choice) no emotion value appears: the emotion columns are empty.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from core import metrics, queries
from core.store import EMOTION_COLUMNS, Store

EMOTION_OBSERVATION_COLUMNS = (*EMOTION_COLUMNS, "dominant_emotion", "dominant_conf")


def observations_csv(store: Store, lecture_id: int, *, attention_only: bool = False) -> str:
    """One row per student per sampled moment; emotion columns empty in attention-only mode."""
    m = metrics.for_lecture(store, lecture_id, attention_only=attention_only)
    obs = queries.observations(store, lecture_id)
    if not m.show_emotions:
        obs = obs.assign(**{c: None for c in EMOTION_OBSERVATION_COLUMNS})
    return obs.to_csv(index=False, float_format="%.4f")


def students_csv(store: Store, lecture_id: int, *, attention_only: bool = False) -> str:
    """`metrics.students_export`: presence and engagement (0-1) and the rest, one row per student."""
    m = metrics.for_lecture(store, lecture_id, attention_only=attention_only)
    return metrics.students_export(m).to_csv(index=False, float_format="%.4f")


def _num(x: object) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)  # type: ignore[arg-type]


def emotions_json(store: Store, lecture_id: int, *, attention_only: bool = False) -> str:
    """The seed's `/api/emotions` content: each student with presence, engagement and (unless
    attention-only) their emotions, score (mean confidence while dominant) and minutes."""
    m = metrics.for_lecture(store, lecture_id, attention_only=attention_only)
    students = []
    for s in m.students.itertuples():
        entry: dict[str, object] = {
            "student": s.student,
            "presence": _num(s.presence),
            "engagement": _num(s.engagement),
        }
        if m.show_emotions:
            rows = m.emotions[m.emotions["student_id"] == s.student_id]
            entry["emotions"] = [
                {"emotion": r.emotion, "score": _num(r.mean_confidence), "minutes": _num(r.minutes)}
                for r in rows.itertuples()
            ]
        students.append(entry)
    doc = {"lecture_id": lecture_id, "attention_only": not m.show_emotions, "students": students}
    return json.dumps(doc, indent=2)


def write_csvs(
    store: Store, lecture_id: int, out_dir: str | Path, *, attention_only: bool = False
) -> tuple[Path, Path]:
    """Write `observations.csv` and `students.csv` into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    obs, stu = out / "observations.csv", out / "students.csv"
    obs.write_text(observations_csv(store, lecture_id, attention_only=attention_only))
    stu.write_text(students_csv(store, lecture_id, attention_only=attention_only))
    return obs, stu
