"""Facts of one lecture for a report: every figure and name a report may state, from DuckDB.

Renderings: the seed's input string (`Student 1: happy=0.80 (5.00min); ...`, editable in the
page and parsed back with `apply_input`) and a facts text for prompts. All number formatting of
reports goes through the `fmt_*` helpers here, so the grounding check sees the same forms.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from core import queries
from core.errors import ClassLensError, LectureNotFound
from core.faces import EMOTIONS
from core.store import Store

# Thresholds (attention in [0, 1]); named so rules, tests and the page agree.
LOW_ATTENTION = 0.6  # a period below this (or 0.15 under the lecture's mean, if lower) is a drop
HIGH_ATTENTION = 0.85  # a period at or above this is a highlight worth praising
EYES_CLOSED = 0.2  # eyes_open below this counts as closed
NEGATIVE_EMOTIONS = ("angry", "disgust", "fear", "sad")
BIN_CHOICES_S = (1, 2, 5, 10, 15, 30, 60, 120, 300)
MAX_BINS = 24


class BadReportInput(ClassLensError):
    """The edited report input string cannot be read."""


def fmt_att(x: float) -> str:
    """Attention or confidence, two decimals: 0.72."""
    return f"{x:.2f}"


def fmt_pct(x: float) -> str:
    """A share in [0, 1] as a whole percentage: 45%."""
    return f"{round(100 * x)}%"


def fmt_min(x: float) -> str:
    """Minutes, two decimals (as in the seed's input string)."""
    return f"{x:.2f}"


def fmt_s(x: float) -> str:
    """Seconds, one decimal."""
    return f"{x:.1f}"


def fmt_time(seconds: float) -> str:
    """A moment of the lecture as m:ss (minutes may exceed 59): 25:00, 0:05."""
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}"


@dataclass(frozen=True)
class Period:
    """A stretch of the lecture. start_s, end_s: seconds from the start; attention: mean in it."""

    start_s: float
    end_s: float
    attention: float
    before: float | None = None  # mean attention in the bins just before (None at the start)

    def span(self) -> str:
        return f"{fmt_time(self.start_s)}–{fmt_time(self.end_s)}"


@dataclass(frozen=True)
class EmotionFact:
    """Dominant emotion: share of observations, minutes dominant, mean confidence while dominant."""

    emotion: str
    share: float
    minutes: float
    confidence: float | None


@dataclass(frozen=True)
class Fatigue:
    """Eye-closure signals. closed_share: of samples with eyes measured; longest_s: seconds."""

    closed_share: float
    longest_s: float


@dataclass(frozen=True)
class StudentFacts:
    """One student's figures. attention: mean over observed samples (None when not measured)."""

    name: str
    minutes_seen: float
    attention: float | None = None
    first_half: float | None = None
    second_half: float | None = None
    low_periods: tuple[Period, ...] = ()
    high_periods: tuple[Period, ...] = ()
    fatigue: Fatigue | None = None
    emotions: tuple[EmotionFact, ...] = ()

    def emotion(self, name: str) -> EmotionFact | None:
        return next((e for e in self.emotions if e.emotion == name), None)


@dataclass(frozen=True)
class LectureFacts:
    """Everything a report on one lecture may state (class level plus each student).

    Times are seconds from the lecture's start; attention values are in [0, 1]; emotion shares
    are fractions of the observations with an emotion.
    """

    lecture_id: int
    file_name: str
    duration_min: float
    attention_only: bool
    bin_s: int
    students: tuple[StudentFacts, ...]
    attention: float | None = None
    first_half: float | None = None
    second_half: float | None = None
    midpoint_s: float = 0.0
    low_periods: tuple[Period, ...] = ()
    high_periods: tuple[Period, ...] = ()
    fatigue: Fatigue | None = None
    emotions: tuple[EmotionFact, ...] = ()
    break_lead_s: float = 0.0
    edited: bool = False
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.students)

    def emotion(self, name: str) -> EmotionFact | None:
        return next((e for e in self.emotions if e.emotion == name), None)

    def break_time(self, period: Period) -> float:
        """When to suggest a break for a drop: one lead before it starts (not before 0)."""
        return max(0.0, period.start_s - self.break_lead_s)

    def figures(self) -> list[float]:
        """Every number these facts hold (for the grounding check), times in seconds and minutes."""
        out: list[float] = [len(self.students), self.duration_min, self.bin_s, *self.extra.values()]
        times: list[float] = [self.midpoint_s]

        def add_periods(periods: tuple[Period, ...]) -> None:
            for p in periods:
                out.append(p.attention)
                if p.before is not None:
                    out.append(p.before)
                times.extend([p.start_s, p.end_s, p.end_s - p.start_s, self.break_time(p)])

        def add_common(x: LectureFacts | StudentFacts) -> None:
            out.extend(v for v in (x.attention, x.first_half, x.second_half) if v is not None)
            add_periods(x.low_periods)
            add_periods(x.high_periods)
            if x.fatigue is not None:
                out.extend([x.fatigue.closed_share, x.fatigue.longest_s])
            out.append(sum(e.share for e in x.emotions if e.emotion in NEGATIVE_EMOTIONS))
            for e in x.emotions:
                out.extend([e.share, e.minutes])
                if e.confidence is not None:
                    out.append(e.confidence)

        add_common(self)
        for s in self.students:
            out.append(s.minutes_seen)
            add_common(s)
        out.extend(times)
        out.extend(t / 60 for t in times)
        return [float(v) for v in out if v is not None and math.isfinite(float(v))]

    def times(self) -> set[int]:
        """Every moment (whole seconds) these facts mention."""
        ts = {round(self.midpoint_s)}
        for x in (self, *self.students):
            for p in (*x.low_periods, *x.high_periods):
                ts |= {round(p.start_s), round(p.end_s), round(self.break_time(p))}
        return ts


# --- building from the database -----------------------------------------------------------------


def _bin_size(duration_s: float) -> int:
    return next((b for b in BIN_CHOICES_S if duration_s / b <= MAX_BINS), BIN_CHOICES_S[-1])


def _periods(series: pd.Series, bin_s: int, duration_s: float, pred, before_n: int = 3) -> tuple[Period, ...]:
    """Runs of consecutive bins (index = bin number) where `pred(value)` holds."""
    out: list[Period] = []
    bins = series.dropna()
    run: list[int] = []

    def close() -> None:
        if not run:
            return
        vals = bins.loc[run]
        prior = bins[(bins.index < run[0]) & (bins.index >= run[0] - before_n)]
        out.append(
            Period(
                start_s=float(run[0] * bin_s),
                end_s=float(min(duration_s, (run[-1] + 1) * bin_s)),
                attention=float(vals.mean()),
                before=float(prior.mean()) if len(prior) else None,
            )
        )

    for b, v in bins.items():
        if pred(v) and (not run or b == run[-1] + 1):
            run.append(int(b))
        elif pred(v):
            close()
            run = [int(b)]
        else:
            close()
            run = []
    close()
    return tuple(out)


def _fatigue(obs: pd.DataFrame, fps: float) -> Fatigue | None:
    eyes = obs.dropna(subset=["eyes_open"])
    if eyes.empty:
        return None
    closed = eyes["eyes_open"] < EYES_CLOSED
    longest = 0
    for _, g in eyes.assign(closed=closed).groupby("student_id"):
        run = 0
        for c in g.sort_values("t")["closed"]:
            run = run + 1 if c else 0
            longest = max(longest, run)
    return Fatigue(closed_share=float(closed.mean()), longest_s=longest / fps)


def _emotions(obs: pd.DataFrame, fps: float) -> tuple[EmotionFact, ...]:
    emo = obs.dropna(subset=["dominant_emotion"])
    if emo.empty:
        return ()
    out = []
    for e, g in emo.groupby("dominant_emotion"):
        out.append(
            EmotionFact(
                emotion=str(e),
                share=len(g) / len(emo),
                minutes=len(g) / fps / 60,
                confidence=float(g["dominant_conf"].mean()) if g["dominant_conf"].notna().any() else None,
            )
        )
    return tuple(sorted(out, key=lambda x: (-x.minutes, x.emotion)))


def _attention_parts(obs: pd.DataFrame, bin_s: int, duration_s: float, low: float):
    att = obs.dropna(subset=["attention"])
    if att.empty:
        return None, None, None, (), ()
    per_bin = att.groupby((att["t"] // bin_s).astype(int))["attention"].mean()
    half = duration_s / 2
    first = att.loc[att["t"] < half, "attention"]
    second = att.loc[att["t"] >= half, "attention"]
    lows = _periods(per_bin, bin_s, duration_s, lambda v: v < low)
    highs = _periods(per_bin, bin_s, duration_s, lambda v: v >= HIGH_ATTENTION)
    return (
        float(att["attention"].mean()),
        float(first.mean()) if len(first) else None,
        float(second.mean()) if len(second) else None,
        lows,
        highs,
    )


def build_facts(store: Store, lecture_id: int, attention_only: bool | None = None) -> LectureFacts:
    """Facts of one lecture from the database.

    Args:
        attention_only: leave every emotion out; None = as the lecture was analysed.
    """
    try:
        lec = queries.lecture_row(store, lecture_id)
    except IndexError:
        raise LectureNotFound(f"There is no lecture {lecture_id} in {store.path}.") from None
    fps = float(lec["sample_fps"])
    obs = queries.observations(store, lecture_id)
    studs = queries.students(store, lecture_id)
    try:
        analysed_attention_only = bool(json.loads(lec["settings"]).get("attention_only", False))
    except (TypeError, ValueError):
        analysed_attention_only = False
    a_only = analysed_attention_only if attention_only is None else (attention_only or analysed_attention_only)
    if a_only:
        obs = obs.assign(dominant_emotion=None, dominant_conf=np.nan)
    duration_s = float(lec["duration_s"]) if pd.notna(lec["duration_s"]) and lec["duration_s"] else 0.0
    if obs.shape[0]:
        duration_s = max(duration_s, float(obs["t"].max()) + 1 / fps)
    bin_s = _bin_size(duration_s)
    mean_att = float(obs["attention"].mean()) if obs["attention"].notna().any() else None
    low = min(LOW_ATTENTION, mean_att - 0.15) if mean_att is not None else LOW_ATTENTION

    students = []
    for s in studs.itertuples():
        sobs = obs[obs["student_id"] == s.student_id]
        name = s.identity if isinstance(s.identity, str) and s.identity else s.student
        att, first, second, lows, highs = _attention_parts(sobs, bin_s, duration_s, low)
        students.append(
            StudentFacts(
                name=str(name),
                minutes_seen=float(s.minutes_seen),
                attention=att,
                first_half=first,
                second_half=second,
                low_periods=lows,
                high_periods=highs,
                fatigue=_fatigue(sobs, fps),
                emotions=_emotions(sobs, fps),
            )
        )
    att, first, second, lows, highs = _attention_parts(obs, bin_s, duration_s, low)
    return LectureFacts(
        lecture_id=lecture_id,
        file_name=str(lec["file_name"]),
        duration_min=duration_s / 60,
        attention_only=a_only,
        bin_s=bin_s,
        students=tuple(students),
        attention=att,
        first_half=first,
        second_half=second,
        midpoint_s=float(round(duration_s / 2)),
        low_periods=lows,
        high_periods=highs,
        fatigue=_fatigue(obs, fps),
        emotions=_emotions(obs, fps),
        # Suggest a break this long before a drop: 5 minutes in a real lecture, one bin in a clip.
        break_lead_s=float(300 if duration_s >= 1800 else bin_s),
    )


# --- the seed's input string ----------------------------------------------------------------------


def input_string(facts: LectureFacts) -> str:
    """`Student 1: attention=0.72; happy=0.80 (5.00min); sad=0.10 (1.00min) | Student 2: ...`.

    Same form as `core.queries.report_input`; emotions are left out in attention-only mode.
    """
    parts = []
    for s in facts.students:
        items = [f"attention={fmt_att(s.attention)}"] if s.attention is not None else []
        if not facts.attention_only:
            items += [
                f"{e.emotion}={fmt_att(e.confidence or 0.0)} ({fmt_min(e.minutes)}min)"
                for e in sorted(s.emotions, key=lambda x: (-x.minutes, x.emotion))
            ]
        parts.append(f"{s.name}: {'; '.join(items)}")
    return " | ".join(parts)


_ITEM = re.compile(r"^\s*([a-z]+)\s*=\s*([0-9]*\.?[0-9]+)\s*(?:\(\s*([0-9]*\.?[0-9]+)\s*min\s*\))?\s*$", re.I)


def parse_input(text: str) -> list[tuple[str, float | None, dict[str, tuple[float, float]]]]:
    """Parse an input string into (name, attention, {emotion: (confidence, minutes)}) per student.

    Raises:
        BadReportInput: with a message naming the part that could not be read.
    """
    out = []
    for chunk in [c for c in text.split("|") if c.strip()]:
        name, sep, rest = chunk.partition(":")
        name = name.strip()
        if not sep or not name:
            raise BadReportInput(f"Could not read “{chunk.strip()}”: expected “Name: happy=0.80 (5.00min); …”.")
        attention: float | None = None
        emotions: dict[str, tuple[float, float]] = {}
        for item in [i for i in rest.split(";") if i.strip()]:
            m = _ITEM.match(item)
            if not m:
                raise BadReportInput(
                    f"Could not read “{item.strip()}” for {name}: expected “emotion=0.80 (5.00min)” or "
                    "“attention=0.72”."
                )
            key, value, minutes = m.group(1).lower(), float(m.group(2)), m.group(3)
            if key == "attention":
                attention = value
            elif key in EMOTIONS and minutes is not None:
                emotions[key] = (value, float(minutes))
            else:
                raise BadReportInput(
                    f"“{item.strip()}” for {name}: the known names are attention and {', '.join(EMOTIONS)}, "
                    "and each emotion needs its minutes, e.g. happy=0.80 (5.00min)."
                )
            if not 0 <= value <= 1:
                raise BadReportInput(f"“{item.strip()}” for {name}: values must lie between 0 and 1.")
        out.append((name, attention, emotions))
    if not out:
        raise BadReportInput("The report input is empty: it needs at least one “Name: …” entry.")
    return out


def apply_input(facts: LectureFacts, text: str) -> LectureFacts:
    """Facts with the per-student figures (names, attention, emotions) taken from an edited
    input string. Students are matched by name, else by position; time-based figures (periods,
    halves, fatigue) stay with a matched student. Class emotion figures are recomputed."""
    if text.strip() == input_string(facts).strip():
        return facts
    entries = parse_input(text)
    by_name = {s.name: s for s in facts.students}
    students = []
    for i, (name, attention, emo) in enumerate(entries):
        base = by_name.get(name) or (facts.students[i] if i < len(facts.students) else StudentFacts(name, 0.0))
        emotions: tuple[EmotionFact, ...] = ()
        if emo and not facts.attention_only:
            total = sum(m for _, m in emo.values()) or 1.0
            emotions = tuple(
                sorted(
                    (EmotionFact(e, m / total, m, c) for e, (c, m) in emo.items()),
                    key=lambda x: (-x.minutes, x.emotion),
                )
            )
        minutes = sum(m for _, m in emo.values()) if emo else base.minutes_seen
        keep_time = (
            attention is not None and base.attention is not None and round(attention, 2) == round(base.attention, 2)
        )
        students.append(
            replace(
                base,
                name=name,
                minutes_seen=minutes,
                attention=attention,
                emotions=emotions if not facts.attention_only else (),
                first_half=base.first_half if keep_time else None,
                second_half=base.second_half if keep_time else None,
                low_periods=base.low_periods if keep_time else (),
                high_periods=base.high_periods if keep_time else (),
            )
        )
    # Class emotions: minutes summed over students.
    sums: dict[str, list[float]] = {}
    for s in students:
        for e in s.emotions:
            acc = sums.setdefault(e.emotion, [0.0, 0.0])
            acc[0] += e.minutes
            acc[1] += (e.confidence or 0.0) * e.minutes
    total = sum(v[0] for v in sums.values()) or 1.0
    class_emotions = tuple(
        sorted(
            (EmotionFact(e, m / total, m, (c / m) if m else None) for e, (m, c) in sums.items()),
            key=lambda x: (-x.minutes, x.emotion),
        )
    )
    atts = [(s.attention, max(s.minutes_seen, 1e-9)) for s in students if s.attention is not None]
    class_att = sum(a * w for a, w in atts) / sum(w for _, w in atts) if atts else None
    same_att = class_att is not None and facts.attention is not None and abs(class_att - facts.attention) < 0.005
    return replace(
        facts,
        students=tuple(students),
        emotions=class_emotions,
        attention=class_att if not same_att else facts.attention,
        edited=True,
    )


# --- facts text for prompts ------------------------------------------------------------------------


def _describe(x: LectureFacts | StudentFacts, attention_only: bool) -> list[str]:
    lines = []
    if x.attention is not None:
        line = f"mean attention {fmt_att(x.attention)}"
        if x.first_half is not None and x.second_half is not None:
            line += f" (first half {fmt_att(x.first_half)}, second half {fmt_att(x.second_half)})"
        lines.append(line)
    for p in x.low_periods:
        lines.append(f"attention low at {p.span()}: {fmt_att(p.attention)}")
    for p in x.high_periods:
        lines.append(f"attention high at {p.span()}: {fmt_att(p.attention)}")
    if x.fatigue is not None:
        lines.append(
            f"eyes closed in {fmt_pct(x.fatigue.closed_share)} of samples, "
            f"longest closure {fmt_s(x.fatigue.longest_s)} s"
        )
    if not attention_only:
        for e in x.emotions:
            conf = f", confidence {fmt_att(e.confidence)}" if e.confidence is not None else ""
            lines.append(f"{e.emotion} {fmt_pct(e.share)} ({fmt_min(e.minutes)} min{conf})")
    return lines


def facts_text(facts: LectureFacts) -> str:
    """The facts as short lines, the only figures a prompt offers the model."""
    lines = [
        f"Lecture: {facts.file_name}, {fmt_min(facts.duration_min)} min, {len(facts.students)} student(s).",
        "Class: " + "; ".join(_describe(facts, facts.attention_only) or ["no attention measured"]) + ".",
    ]
    for s in facts.students:
        desc = _describe(s, facts.attention_only)
        lines.append(f"{s.name}: seen {fmt_min(s.minutes_seen)} min; " + "; ".join(desc or ["no figures"]) + ".")
    return "\n".join(lines)
