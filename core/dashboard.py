"""What the dashboard and the students page draw for one lecture, from `core.metrics` (no figure is
computed here: this module only arranges the metrics into cards, tables and chart frames)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core import metrics
from core.faces import EMOTIONS
from core.metrics import DEFINITIONS, LOW_ENGAGEMENT, LectureMetrics
from core.store import Store

__all__ = ["DEFINITIONS", "LOW_ENGAGEMENT", "Cards", "LectureFrames", "StudentFrames", "build", "student_frames"]


@dataclass(frozen=True)
class Cards:
    """The dashboard's headline numbers (0-1; None when not measured or hidden)."""

    students: int
    presence: float | None
    engagement: float | None
    happiness: float | None
    confidence: float | None
    anxiety: float | None
    attention_measured: bool


@dataclass(frozen=True)
class LectureFrames:
    """Everything the dashboard draws for one lecture.

    Attributes:
        bin_s: width of a time bin, seconds.
        per_student_bin: `metrics.per_student_bins` (engagement NaN = not visible).
        timeline: `metrics.class_timeline`.
        emotions_over_time, positive: per-bin emotion shares and positive-emotion index (empty
            when emotions are not shown).
        bands: students by engagement band.
        table: `metrics.LectureMetrics.students`.
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


def cards(m: LectureMetrics) -> Cards:
    """Headline numbers (definitions in `core.metrics`)."""
    show = m.show_emotions
    return Cards(
        students=len(m.students),
        presence=m.presence,
        engagement=m.engagement,
        happiness=metrics.mean_probability(m.obs, ("happy",)) if show else None,
        confidence=float(m.obs["dominant_conf"].mean()) if show and m.obs["dominant_conf"].notna().any() else None,
        anxiety=metrics.mean_probability(m.obs, metrics.ANXIETY) if show else None,
        attention_measured=m.attention_measured,
    )


def from_metrics(m: LectureMetrics) -> LectureFrames:
    """The dashboard frames of computed metrics."""
    return LectureFrames(
        cards=cards(m),
        bin_s=m.bin_s,
        duration_s=m.duration_s,
        sample_fps=m.sample_fps,
        has_emotions=m.show_emotions,
        per_student_bin=m.per_student_bin,
        timeline=metrics.class_timeline(m.per_student_bin, m.class_bin),
        emotions_over_time=metrics.emotions_over_time(m.obs, m.bin_s) if m.show_emotions else _empty_emotions(),
        positive=metrics.positive_index_bins(m.obs, m.bin_s),
        bands=metrics.performance_bands(m.students["engagement"]),
        table=m.students,
    )


def _empty_emotions() -> pd.DataFrame:
    return pd.DataFrame(columns=["bin", "t_start", "emotion", "share"])


def build(store: Store, lecture_id: int, *, attention_only: bool = False) -> LectureFrames:
    """Every dashboard frame of one lecture."""
    return from_metrics(metrics.for_lecture(store, lecture_id, attention_only=attention_only))


# -- one student ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudentFrames:
    """The drilldown of one student.

    Attributes:
        timeline: per bin (bin, t_start, present, expected, presence, engagement).
        emotions: per bin mean probability of each emotion (t_start, emotion, probability).
        emotion_minutes: per dominant emotion: minutes and mean confidence.
        low_periods: `metrics.periods` of the student as a frame (start_s, end_s, engagement).
        strongest: the moments with the strongest non-neutral emotion.
        body: the student's body state (`metrics.body_state` columns: face_visible_share,
            head_down_share, hand_raised_moments, posture).
    """

    student_id: int
    label: str
    presence: float
    engagement: float | None
    minutes_present: float
    timeline: pd.DataFrame
    emotions: pd.DataFrame
    emotion_minutes: pd.DataFrame
    low_periods: pd.DataFrame
    strongest: pd.DataFrame
    body: dict[str, object] | None = None

    def body_sentence(self) -> str:
        """The body state in words, e.g. "Face visible 75% of the time in view · head down 33% · hand
        raised once · usually upright" (empty when nothing is known)."""
        from core import units

        b = self.body or {}
        parts = []
        if pd.notna(b.get("face_visible_share")):
            parts.append(f"Face visible {float(b['face_visible_share']):.0%} of the time in view")
        if pd.notna(b.get("head_down_share")):
            parts.append(f"head down {float(b['head_down_share']):.0%}")
        if pd.notna(b.get("hand_raised_moments")):
            n = int(b["hand_raised_moments"])
            parts.append("hand never raised" if n == 0 else f"hand raised at {units.plural(n, 'moment')}")
        if isinstance(b.get("posture"), str):
            parts.append(f"usually {b['posture']}")
        return " · ".join(parts)


def low_periods_frame(periods: tuple[metrics.Period, ...]) -> pd.DataFrame:
    return pd.DataFrame(
        [(p.start_s, p.end_s, p.engagement) for p in periods], columns=["start_s", "end_s", "engagement"]
    )


def strongest_moments(obs: pd.DataFrame, k: int = 4) -> pd.DataFrame:
    """The `k` moments whose top emotion is not neutral and most confident, at least 2 s apart."""
    cols = ["t", "frame_index", "emotion", "confidence", "x1", "y1", "x2", "y2"]
    emo = metrics.emotion_readings(obs)
    emo = emo[emo["dominant_emotion"] != "neutral"].sort_values("dominant_conf", ascending=False) if len(emo) else emo
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


def student_frames(store: Store, lecture_id: int, student_id: int, *, attention_only: bool = False) -> StudentFrames:
    """Drilldown of one student.

    Raises:
        KeyError: no such student in the lecture.
    """
    m = metrics.for_lecture(store, lecture_id, attention_only=attention_only)
    row = m.students[m.students["student_id"] == student_id]
    if row.empty:
        raise KeyError(student_id)
    r = row.iloc[0]
    obs = m.obs[m.obs["student_id"] == student_id]
    per = m.per_student_bin[m.per_student_bin["student_id"] == student_id]
    emotions = pd.DataFrame(columns=["t_start", "emotion", "probability"])
    readings = metrics.emotion_readings(obs)
    if m.show_emotions and len(readings) and readings["p_happy"].notna().any():
        b = metrics.bin_index(readings["t"], m.bin_s)
        probs = readings[[f"p_{e}" for e in EMOTIONS]].astype(float).assign(bin=b).groupby("bin").mean()
        probs = probs.reindex(range(metrics.bin_count(m.duration_s, m.bin_s)))  # NaN: no reading in the bin
        probs.columns = list(EMOTIONS)
        probs.index.name = "bin"
        emotions = probs.reset_index().melt(id_vars="bin", var_name="emotion", value_name="probability")
        emotions["t_start"] = emotions["bin"] * m.bin_s
        emotions = emotions[["t_start", "emotion", "probability"]]
    minutes = m.emotions[m.emotions["student_id"] == student_id] if m.show_emotions else m.emotions
    minutes = minutes.reindex(columns=["emotion", "minutes", "mean_confidence"])
    return StudentFrames(
        student_id=student_id,
        label=str(r["student"]),
        presence=float(r["presence"]),
        engagement=None if pd.isna(r["engagement"]) else float(r["engagement"]),
        minutes_present=float(r["minutes_present"]),
        timeline=per[["bin", "t_start", "present", "expected", "presence", "engagement"]].reset_index(drop=True),
        emotions=emotions,
        emotion_minutes=minutes.reset_index(drop=True),
        low_periods=low_periods_frame(m.low_periods(student_id)),
        strongest=strongest_moments(obs) if m.show_emotions else pd.DataFrame(),
        body={k: r.get(k) for k in ("face_visible_share", "head_down_share", "hand_raised_moments", "posture")},
    )
