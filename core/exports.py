"""Exports of one lecture: observations CSV, per-student summary CSV, the seed's JSON document."""

from __future__ import annotations

import json
from pathlib import Path

from core import queries
from core.store import Store


def observations_csv(store: Store, lecture_id: int) -> str:
    return queries.observations(store, lecture_id).to_csv(index=False, float_format="%.4f")


def students_csv(store: Store, lecture_id: int) -> str:
    """Per-student summary plus attention per minute as columns `attention_minute_1..N`."""
    summary = queries.student_summary(store, lecture_id)
    per_minute = queries.attention_per_minute(store, lecture_id)
    if not summary.empty and not per_minute.empty:
        wide = per_minute.pivot(index="student_id", columns="minute", values="attention")
        wide.columns = [f"attention_minute_{int(m) + 1}" for m in wide.columns]
        summary = summary.merge(wide, left_on="student_id", right_index=True, how="left")
    return summary.to_csv(index=False, float_format="%.4f")


def emotions_json(store: Store, lecture_id: int) -> str:
    """The seed's `/api/emotions` content: each student with their emotions, score and minutes."""
    emo = queries.emotion_summary(store, lecture_id)
    studs = queries.students(store, lecture_id)
    doc = {
        "lecture_id": lecture_id,
        "students": [
            {
                "student": s.identity if isinstance(s.identity, str) and s.identity else s.student,
                "attention": None
                if s.attention != s.attention or s.attention is None
                else round(float(s.attention), 4),
                "emotions": [
                    {
                        "emotion": r.emotion,
                        "score": round(float(r.mean_confidence), 4),
                        "minutes": round(float(r.minutes), 4),
                    }
                    for r in emo[emo["student_id"] == s.student_id].itertuples()
                ],
            }
            for s in studs.itertuples()
        ],
    }
    return json.dumps(doc, indent=2)


def write_csvs(store: Store, lecture_id: int, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `observations.csv` and `students.csv` into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    obs, stu = out / "observations.csv", out / "students.csv"
    obs.write_text(observations_csv(store, lecture_id))
    stu.write_text(students_csv(store, lecture_id))
    return obs, stu
