"""Class-level and per-student aggregates of one lecture for the dashboard (DuckDB -> DataFrames).

Definitions shown in the app (kept here, next to the code that computes them):

- engagement of one observation: its attention score when attention was measured (head pose,
  eyes; see core/attention.py), otherwise 1 for "face present and facing the camera" (the
  detector found it). Per student per time bin: sum of engagement / samples expected in the bin,
  so moments where the face is absent count as 0 (as in `queries.attention_per_minute`).
- happiness: mean probability of "happy" over all observations with emotions.
- confidence: how sure the emotion model is of its reading, the mean probability of each
  observation's top emotion (not a judgement of the student).
- anxiety: mean probability of "fear" (FER-2013 has no anxiety class; fear is its closest).
- positive-emotion index: p(happy) − p(angry + disgust + fear + sad), averaged; in [−1, 1],
  neutral and surprise count as neither.
- learning-performance bands: students binned by their lecture engagement in steps of 20%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import queries
from core.faces import EMOTIONS
from core.store import Store

POSITIVE: tuple[str, ...] = ("happy",)
NEGATIVE: tuple[str, ...] = ("angry", "disgust", "fear", "sad")
ANXIETY: tuple[str, ...] = ("fear",)
BAND_EDGES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0 + 1e-9)
BAND_LABELS: tuple[str, ...] = ("0–20%", "20–40%", "40–60%", "60–80%", "80–100%")
LOW_ENGAGEMENT = 0.4
_NICE_BINS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800)

DEFINITIONS: dict[str, str] = {
    "students": "Distinct students (face tracks) found in the lecture.",
    "happiness": "Mean probability of 'happy' over every observed face moment.",
    "confidence": "How sure the emotion model is of its reading: the mean probability of each "
    "moment's top emotion. It describes the model, not the student.",
    "anxiety": "Mean probability of 'fear' (FER-2013 has no anxiety class; fear is the closest).",
    "engagement_measured": "Engagement = the attention score (head towards the class front, eyes open, "
    "no long eye closure, little distress); moments without the face count as 0.",
    "engagement_proxy": "Attention was not measured for this lecture, so engagement = share of the time "
    "the student's face was in view (face present), a rough proxy.",
    "positive_index": "Positive-emotion index = p(happy) − p(angry + disgust + fear + sad), averaged; "
    "from −1 (all negative) to +1 (all happy). Neutral and surprise count as neither.",
    "performance": "Students binned by their engagement over the whole lecture (steps of 20%).",
}


@dataclass(frozen=True)
class Cards:
    """The dashboard's headline numbers (probabilities in [0, 1]; None when not measured)."""

    students: int
    happiness: float | None
    confidence: float | None
    anxiety: float | None
    engagement: float | None
    attention_measured: bool


@dataclass(frozen=True)
class LectureFrames:
    """Everything the dashboard draws for one lecture, computed once per lecture version.

    Attributes:
        bin_s: width of a time bin, seconds.
        per_student_bin: student × bin engagement (long: student_id, student, bin, t_start,
            samples, expected, engagement).
        timeline: per bin class mean, std, p25, p75, min, max of engagement.
        emotions_over_time: per bin share of each dominant emotion (bin, t_start, emotion, share).
        positive: per bin positive-emotion index (bin, t_start, index).
        bands: learning-performance bands (band, students).
        table: per-student table (student_summary + engagement).
    """

    cards: Cards
    bin_s: float
    duration_s: float
    sample_fps: float
    has_emotions: bool
    per_student_bin: pd.DataFrame
    timeline: pd.DataFrame
    emotions_over_time: pd.DataFrame
    positive: pd.DataFrame
    bands: pd.DataFrame
    table: pd.DataFrame


def lecture_timing(store: Store, lecture_id: int) -> tuple[float, float]:
    """(sample_fps, duration seconds); a live lecture without a duration uses its last moment."""
    df = store.query_df(
        "SELECT l.sample_fps, coalesce(nullif(l.duration_s, 0), max(o.t) + 1 / l.sample_fps, 1 / l.sample_fps) "
        "AS duration FROM lectures l LEFT JOIN observations o USING (lecture_id) "
        "WHERE l.lecture_id = ? GROUP BY l.sample_fps, l.duration_s",
        [lecture_id],
    )
    if df.empty:
        return 1.0, 0.0
    return float(df.iloc[0]["sample_fps"]), float(df.iloc[0]["duration"])


def bin_seconds(duration_s: float, sample_fps: float, max_bins: int = 60) -> float:
    """A round bin width giving at most `max_bins` bins and at least one sample per bin."""
    floor = 1.0 / max(sample_fps, 1e-6)
    for b in _NICE_BINS_S:
        if b >= floor and duration_s / b <= max_bins:
            return float(b)
    return float(math.ceil(duration_s / max_bins / 60) * 60)


def cards(store: Store, lecture_id: int) -> Cards:
    """Headline numbers straight from SQL (see module docstring for definitions)."""
    row = store.query_df(
        "SELECT (SELECT count(*) FROM students WHERE lecture_id = $1) AS students, "
        "avg(p_happy) AS happiness, avg(dominant_conf) AS confidence, avg(p_fear) AS anxiety, "
        "count(attention) AS n_att FROM observations WHERE lecture_id = $1",
        [lecture_id],
    ).iloc[0]
    per = student_engagement(store, lecture_id)
    return Cards(
        students=int(row["students"]),
        happiness=_opt(row["happiness"]),
        confidence=_opt(row["confidence"]),
        anxiety=_opt(row["anxiety"]),
        engagement=float(per["engagement"].mean()) if len(per) else None,
        attention_measured=int(row["n_att"]) > 0,
    )


def _opt(v: object) -> float | None:
    return None if v is None or pd.isna(v) else float(v)  # type: ignore[arg-type]


def engagement_values(obs: pd.DataFrame) -> np.ndarray:
    """Per observation: attention where measured, else 1 (face present)."""
    att = obs["attention"].to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isfinite(att), att, 1.0)


def per_student_bins(
    obs: pd.DataFrame, students: pd.DataFrame, duration_s: float, fps: float, bin_s: float
) -> pd.DataFrame:
    """Student × time-bin engagement, absent moments counting as 0 (every pair present)."""
    n_bins = max(1, math.ceil(duration_s / bin_s - 1e-9))
    bins = np.arange(n_bins)
    starts = bins * bin_s
    expected = np.maximum(1.0, np.ceil(np.minimum(bin_s, duration_s - starts) * fps - 1e-9))
    grid = pd.MultiIndex.from_product([students["student_id"].tolist(), bins], names=["student_id", "bin"])
    if obs.empty:
        sums = pd.DataFrame(index=grid, data={"samples": 0, "eng": 0.0})
    else:
        tmp = pd.DataFrame(
            {
                "student_id": obs["student_id"].to_numpy(),
                "bin": np.minimum((obs["t"].to_numpy(dtype=float) // bin_s).astype(int), n_bins - 1),
                "eng": engagement_values(obs),
            }
        )
        sums = tmp.groupby(["student_id", "bin"]).agg(samples=("eng", "size"), eng=("eng", "sum")).reindex(grid)
        sums = sums.fillna({"samples": 0, "eng": 0.0})
    out = sums.reset_index()
    out["samples"] = out["samples"].astype(int)
    out["t_start"] = out["bin"] * bin_s
    out["expected"] = expected[out["bin"].to_numpy()]
    out["engagement"] = np.clip(out["eng"] / out["expected"], 0, 1)
    labels = students.set_index("student_id")["student"]
    out["student"] = out["student_id"].map(labels)
    return out[["student_id", "student", "bin", "t_start", "samples", "expected", "engagement"]]


def class_timeline(per: pd.DataFrame) -> pd.DataFrame:
    """Per bin: class mean engagement with its spread across students."""
    if per.empty:
        return pd.DataFrame(columns=["bin", "t_start", "mean", "std", "p25", "p75", "min", "max", "students"])
    g = per.groupby(["bin", "t_start"])["engagement"]
    out = g.agg(
        mean="mean",
        std=lambda s: float(s.std(ddof=0)),
        p25=lambda s: float(s.quantile(0.25)),
        p75=lambda s: float(s.quantile(0.75)),
        min="min",
        max="max",
        students="size",
    )
    return out.reset_index()


def emotions_over_time(obs: pd.DataFrame, bin_s: float) -> pd.DataFrame:
    """Per bin, the share of observations whose dominant emotion is each of the 7 (long format)."""
    emo = obs.dropna(subset=["dominant_emotion"]) if not obs.empty else obs
    if emo.empty:
        return pd.DataFrame(columns=["bin", "t_start", "emotion", "share"])
    b = (emo["t"].to_numpy(dtype=float) // bin_s).astype(int)
    counts = pd.crosstab(b, emo["dominant_emotion"].astype(str).to_numpy())
    counts = counts.reindex(columns=list(EMOTIONS), fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0)
    shares.index.name = "bin"
    long = shares.reset_index().melt(id_vars="bin", var_name="emotion", value_name="share")
    long["t_start"] = long["bin"] * bin_s
    return long[["bin", "t_start", "emotion", "share"]].sort_values(["bin", "emotion"]).reset_index(drop=True)


def positive_index(obs: pd.DataFrame, bin_s: float) -> pd.DataFrame:
    """Per bin positive-emotion index: mean p(happy) − mean p(angry + disgust + fear + sad)."""
    cols = [f"p_{e}" for e in (*POSITIVE, *NEGATIVE)]
    if obs.empty or obs[cols].isna().all().all():
        return pd.DataFrame(columns=["bin", "t_start", "index"])
    emo = obs.dropna(subset=["p_happy"])
    value = emo[[f"p_{e}" for e in POSITIVE]].astype(float).sum(axis=1) - emo[[f"p_{e}" for e in NEGATIVE]].astype(
        float
    ).sum(axis=1)
    df = pd.DataFrame({"bin": (emo["t"].to_numpy(dtype=float) // bin_s).astype(int), "index": value.to_numpy()})
    out = df.groupby("bin", as_index=False)["index"].mean()
    out["t_start"] = out["bin"] * bin_s
    return out[["bin", "t_start", "index"]]


def student_engagement(store: Store, lecture_id: int) -> pd.DataFrame:
    """Per student: engagement over the whole lecture (absent moments count as 0)."""
    fps, duration = lecture_timing(store, lecture_id)
    obs = store.query_df("SELECT student_id, attention FROM observations WHERE lecture_id = ?", [lecture_id])
    studs = store.query_df(
        "SELECT student_id, label AS student FROM students WHERE lecture_id = ? ORDER BY student_id", [lecture_id]
    )
    expected = max(1.0, math.ceil(duration * fps - 1e-9))
    obs["eng"] = engagement_values(obs) if not obs.empty else []
    sums = obs.groupby("student_id")["eng"].sum()
    studs["engagement"] = (sums.reindex(studs["student_id"]).fillna(0.0).to_numpy() / expected).clip(0, 1)
    return studs


def performance_bands(engagement: pd.Series) -> pd.DataFrame:
    """Number of students in each 20% engagement band (all five bands, zeros included)."""
    cats = pd.cut(engagement.astype(float), bins=list(BAND_EDGES), labels=list(BAND_LABELS), right=False)
    counts = cats.value_counts().reindex(list(BAND_LABELS), fill_value=0)
    return pd.DataFrame({"band": list(BAND_LABELS), "students": counts.to_numpy().astype(int)})


def student_table(store: Store, lecture_id: int) -> pd.DataFrame:
    """One row per student: label, minutes seen, engagement, and each emotion's share and minutes."""
    summary = queries.student_summary(store, lecture_id)
    if summary.empty:
        return summary
    eng = student_engagement(store, lecture_id).set_index("student_id")["engagement"]
    summary.insert(summary.columns.get_loc("minutes_seen") + 1, "engagement", summary["student_id"].map(eng))
    return summary


def build(store: Store, lecture_id: int) -> LectureFrames:
    """Every dashboard aggregate of one lecture."""
    fps, duration = lecture_timing(store, lecture_id)
    bin_s = bin_seconds(duration, fps)
    obs = queries.observations(store, lecture_id)
    studs = store.query_df(
        "SELECT student_id, label AS student FROM students WHERE lecture_id = ? ORDER BY student_id", [lecture_id]
    )
    per = per_student_bins(obs, studs, duration, fps, bin_s)
    table = student_table(store, lecture_id)
    return LectureFrames(
        cards=cards(store, lecture_id),
        bin_s=bin_s,
        duration_s=duration,
        sample_fps=fps,
        has_emotions=bool(not obs.empty and obs["dominant_emotion"].notna().any()),
        per_student_bin=per,
        timeline=class_timeline(per),
        emotions_over_time=emotions_over_time(obs, bin_s),
        positive=positive_index(obs, bin_s),
        bands=performance_bands(table["engagement"] if not table.empty else pd.Series(dtype=float)),
        table=table,
    )


# -- one student ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudentFrames:
    """The drilldown of one student.

    Attributes:
        timeline: per bin engagement (bin, t_start, samples, expected, engagement).
        emotions: per bin mean probability of each emotion (long: t_start, emotion, probability).
        emotion_minutes: per dominant emotion: minutes and mean confidence.
        low_periods: runs of bins with engagement below `LOW_ENGAGEMENT` (start_s, end_s, engagement).
        strongest: the moments with the strongest non-neutral emotion (t, frame_index, emotion,
            confidence, box).
    """

    student_id: int
    label: str
    engagement: float
    minutes_seen: float
    timeline: pd.DataFrame
    emotions: pd.DataFrame
    emotion_minutes: pd.DataFrame
    low_periods: pd.DataFrame
    strongest: pd.DataFrame


def low_periods(timeline: pd.DataFrame, bin_s: float, threshold: float = LOW_ENGAGEMENT) -> pd.DataFrame:
    """Contiguous runs of bins whose engagement is below `threshold`."""
    rows = []
    run: list[pd.Series] = []
    for _, r in timeline.sort_values("bin").iterrows():
        if r["engagement"] < threshold:
            run.append(r)
            continue
        if run:
            rows.append(_period(run, bin_s))
            run = []
    if run:
        rows.append(_period(run, bin_s))
    return pd.DataFrame(rows, columns=["start_s", "end_s", "engagement"])


def _period(run: list[pd.Series], bin_s: float) -> dict[str, float]:
    return {
        "start_s": float(run[0]["t_start"]),
        "end_s": float(run[-1]["t_start"] + bin_s),
        "engagement": float(np.mean([r["engagement"] for r in run])),
    }


def strongest_moments(obs: pd.DataFrame, k: int = 4) -> pd.DataFrame:
    """The `k` moments whose top emotion is not neutral and most confident, at least 2 s apart."""
    cols = ["t", "frame_index", "emotion", "confidence", "x1", "y1", "x2", "y2"]
    emo = obs.dropna(subset=["dominant_emotion"])
    emo = emo[emo["dominant_emotion"] != "neutral"].sort_values("dominant_conf", ascending=False)
    picked: list[pd.Series] = []
    for _, r in emo.iterrows():
        if all(abs(r["t"] - p["t"]) >= 2.0 for p in picked):
            picked.append(r)
        if len(picked) == k:
            break
    if not picked:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(picked).rename(columns={"dominant_emotion": "emotion", "dominant_conf": "confidence"})
    return out[cols].reset_index(drop=True)


def student_frames(store: Store, lecture_id: int, student_id: int) -> StudentFrames:
    """Drilldown aggregates of one student."""
    fps, duration = lecture_timing(store, lecture_id)
    bin_s = bin_seconds(duration, fps)
    obs = queries.observations(store, lecture_id)
    obs = obs[obs["student_id"] == student_id]
    studs = store.query_df(
        "SELECT student_id, label AS student FROM students WHERE lecture_id = ? AND student_id = ?",
        [lecture_id, student_id],
    )
    if studs.empty:
        raise KeyError(student_id)
    per = per_student_bins(obs, studs, duration, fps, bin_s)
    timeline = per[["bin", "t_start", "samples", "expected", "engagement"]]
    if obs["p_happy"].notna().any():
        b = (obs["t"].to_numpy(dtype=float) // bin_s).astype(int)
        probs = obs[[f"p_{e}" for e in EMOTIONS]].astype(float).assign(bin=b).groupby("bin").mean()
        probs.columns = list(EMOTIONS)
        emotions = probs.reset_index().melt(id_vars="bin", var_name="emotion", value_name="probability")
        emotions["t_start"] = emotions["bin"] * bin_s
        emotions = emotions[["t_start", "emotion", "probability"]]
    else:
        emotions = pd.DataFrame(columns=["t_start", "emotion", "probability"])
    summary = queries.emotion_summary(store, lecture_id)
    minutes = summary[summary["student_id"] == student_id][["emotion", "minutes", "mean_confidence"]]
    expected = max(1.0, math.ceil(duration * fps - 1e-9))
    return StudentFrames(
        student_id=student_id,
        label=str(studs.iloc[0]["student"]),
        engagement=float(np.clip(engagement_values(obs).sum() / expected, 0, 1)) if len(obs) else 0.0,
        minutes_seen=len(obs) / fps / 60.0,
        timeline=timeline.reset_index(drop=True),
        emotions=emotions,
        emotion_minutes=minutes.reset_index(drop=True),
        low_periods=low_periods(timeline, bin_s),
        strongest=strongest_moments(obs),
    )
