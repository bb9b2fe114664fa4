"""Facts of one lecture for a report: every figure and name a report may state, from `core.metrics`.

Renderings: the report input string (`Student 1: presence=0.95; engagement=0.72; happy=0.80
(5.00min)`, editable in the page and parsed back with `apply_input`) and a facts text for prompts.
All number formatting of reports goes through the `fmt_*` helpers here, so the claims check sees
the same forms. Engagement and presence are written as whole percentages, as on the dashboard.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import pandas as pd

from core import metrics, units
from core.errors import ClassLensError
from core.faces import EMOTIONS
from core.metrics import NEGATIVE as NEGATIVE_EMOTIONS
from core.metrics import Period
from core.store import Store


class BadReportInput(ClassLensError):
    """The edited report input string cannot be read."""


def fmt_att(x: float) -> str:
    """A 0-1 value in the input string: two decimals, 0.72."""
    return f"{x:.2f}"


def fmt_pct(x: float) -> str:
    """A share or score in [0, 1] as a whole percentage: 45%."""
    return f"{round(100 * x)}%"


def fmt_min(x: float) -> str:
    """Minutes with two decimals (the input string's emotion minutes only)."""
    return f"{x:.2f}"


fmt_time = units.clock  # a moment, m:ss
fmt_duration = units.duration  # a length, m:ss or h:mm h


def fmt_span(p: Period) -> str:
    return f"{fmt_time(p.start_s)}–{fmt_time(p.end_s)}"


@dataclass(frozen=True)
class EmotionFact:
    """Dominant emotion: share of readings; minutes dominant (students only); mean confidence."""

    emotion: str
    share: float
    minutes: float | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class Fatigue:
    """Eye closure: closed_share of present moments with eyes measured; longest_s, seconds."""

    closed_share: float
    longest_s: float


@dataclass(frozen=True)
class StudentFacts:
    """One student's figures (metrics definitions). presence, engagement: 0-1."""

    name: str
    presence: float = 0.0
    seconds_present: float = 0.0
    engagement: float | None = None
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

    Times are seconds from the lecture's start; presence and engagement are in [0, 1]; emotion
    shares are fractions of the readings.
    """

    lecture_id: int
    file_name: str
    duration_s: float
    attention_only: bool
    bin_s: float
    students: tuple[StudentFacts, ...]
    presence: float | None = None
    engagement: float | None = None
    first_half: float | None = None
    second_half: float | None = None
    low_periods: tuple[Period, ...] = ()
    high_periods: tuple[Period, ...] = ()
    fatigue: Fatigue | None = None
    emotions: tuple[EmotionFact, ...] = ()
    edited: bool = False
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.students)

    @property
    def midpoint_s(self) -> float:
        return float(round(self.duration_s / 2))

    def emotion(self, name: str) -> EmotionFact | None:
        return next((e for e in self.emotions if e.emotion == name), None)

    def figures(self) -> list[float]:
        """Every number these facts hold (for the claims check)."""
        out: list[float] = [len(self.students), self.bin_s, *self.extra.values()]

        def add_common(x: LectureFacts | StudentFacts) -> None:
            out.extend(v for v in (x.presence, x.engagement, x.first_half, x.second_half) if v is not None)
            for p in (*x.low_periods, *x.high_periods):
                out.append(p.engagement)
                if p.before is not None:
                    out.append(p.before)
            if x.fatigue is not None:
                out.extend([x.fatigue.closed_share, x.fatigue.longest_s])
            out.append(sum(e.share for e in x.emotions if e.emotion in NEGATIVE_EMOTIONS))
            for e in x.emotions:
                out.extend(v for v in (e.share, e.minutes, e.confidence) if v is not None)

        add_common(self)
        for s in self.students:
            add_common(s)
        return [float(v) for v in out if v is not None and math.isfinite(float(v))]

    def times(self) -> set[int]:
        """Every moment or length (whole seconds) these facts mention, written m:ss."""
        ts = {round(self.midpoint_s), round(self.duration_s)}
        for x in (self, *self.students):
            for p in (*x.low_periods, *x.high_periods):
                ts |= {round(p.start_s), round(p.end_s), round(p.duration_s)}
        for x in (self, *self.students):
            if x.fatigue is not None:
                ts.add(round(x.fatigue.longest_s))
        for s in self.students:
            ts.add(round(s.seconds_present))
        from core.report.rules import break_moments  # the break times the rules may suggest

        return ts | {round(t) for t in break_moments(self)}

    def hours(self) -> set[int]:
        """Lengths of an hour or more, in whole minutes (written h:mm h)."""
        return {round(self.duration_s / 60)} if self.duration_s >= 3600 else set()


# --- building from the metrics ------------------------------------------------------------------


def _fatigue(closed_share: float, longest_s: float) -> Fatigue | None:
    if closed_share != closed_share or longest_s != longest_s:  # NaN: no eye readings
        return None
    return Fatigue(float(closed_share), float(longest_s))


def _opt(v: object) -> float | None:
    return None if v is None or pd.isna(v) else float(v)  # type: ignore[arg-type]


def from_metrics(m: metrics.LectureMetrics) -> LectureFacts:
    """The report facts of computed metrics (the same numbers as the dashboard and exports)."""
    students = []
    for s in m.students.itertuples():
        emotions: tuple[EmotionFact, ...] = ()
        if m.show_emotions:
            rows = m.emotions[m.emotions["student_id"] == s.student_id]
            emotions = tuple(
                EmotionFact(str(r.emotion), float(r.share), float(r.minutes), _opt(r.mean_confidence))
                for r in rows.itertuples()
            )
        students.append(
            StudentFacts(
                name=str(s.student),
                presence=float(s.presence),
                seconds_present=float(s.present) / m.sample_fps,
                engagement=_opt(s.engagement),
                first_half=_opt(s.first_half),
                second_half=_opt(s.second_half),
                low_periods=m.low_periods(int(s.student_id)),
                high_periods=m.high_periods(int(s.student_id)),
                fatigue=_fatigue(s.closed_share, s.longest_closure_s),
                emotions=emotions,
            )
        )
    first, second = m.halves()
    eyes = m.class_eye_closure()
    return LectureFacts(
        lecture_id=m.lecture_id,
        file_name=m.file_name,
        duration_s=m.duration_s,
        attention_only=not m.show_emotions,
        bin_s=m.bin_s,
        students=tuple(students),
        presence=m.presence,
        engagement=m.engagement,
        first_half=first,
        second_half=second,
        low_periods=m.low_periods(),
        high_periods=m.high_periods(),
        fatigue=Fatigue(*eyes) if eyes else None,
        emotions=tuple(EmotionFact(str(r.emotion), float(r.share)) for r in m.class_emotions().itertuples()),
    )


def build_facts(store: Store, lecture_id: int, attention_only: bool | None = None) -> LectureFacts:
    """Facts of one lecture from the database.

    Args:
        attention_only: leave every emotion out (a lecture analysed that way always does).

    Raises:
        LectureNotFound: no such lecture.
    """
    return from_metrics(metrics.for_lecture(store, lecture_id, attention_only=bool(attention_only)))


# --- the report input string ----------------------------------------------------------------------


def input_string(facts: LectureFacts) -> str:
    """`Student 1: presence=0.95; engagement=0.72; happy=0.80 (5.00min) | Student 2: ...`.

    The one builder of the report input (dashboard box, report page, exports). Per emotion: mean
    confidence while dominant and minutes dominant, most minutes first; no emotion in
    attention-only mode.
    """
    parts = []
    for s in facts.students:
        items = [f"presence={fmt_att(s.presence)}"]
        if s.engagement is not None:
            items.append(f"engagement={fmt_att(s.engagement)}")
        if not facts.attention_only:
            items += [
                f"{e.emotion}={fmt_att(e.confidence or 0.0)} ({fmt_min(e.minutes or 0.0)}min)"
                for e in sorted(s.emotions, key=lambda x: (-(x.minutes or 0), x.emotion))
            ]
        parts.append(f"{s.name}: {'; '.join(items)}")
    return " | ".join(parts)


_ITEM = re.compile(r"^\s*([a-z]+)\s*=\s*([0-9]*\.?[0-9]+)\s*(?:\(\s*([0-9]*\.?[0-9]+)\s*min\s*\))?\s*$", re.I)


@dataclass(frozen=True)
class InputEntry:
    """One student of an input string."""

    name: str
    presence: float | None
    engagement: float | None
    emotions: dict[str, tuple[float, float]]  # emotion -> (confidence, minutes)


def parse_input(text: str) -> list[InputEntry]:
    """Parse an input string (`attention=` is read as engagement, as in earlier versions).

    Raises:
        BadReportInput: with a message naming the part that could not be read.
    """
    out = []
    for chunk in [c for c in text.split("|") if c.strip()]:
        name, sep, rest = chunk.partition(":")
        name = name.strip()
        if not sep or not name:
            raise BadReportInput(f"Could not read “{chunk.strip()}”: expected “Name: engagement=0.72; …”.")
        values: dict[str, float] = {}
        emotions: dict[str, tuple[float, float]] = {}
        for item in [i for i in rest.split(";") if i.strip()]:
            m = _ITEM.match(item)
            if not m:
                raise BadReportInput(
                    f"Could not read “{item.strip()}” for {name}: expected “engagement=0.72” or "
                    "“emotion=0.80 (5.00min)”."
                )
            key, value, minutes = m.group(1).lower(), float(m.group(2)), m.group(3)
            if key in ("presence", "engagement", "attention"):
                values["engagement" if key == "attention" else key] = value
            elif key in EMOTIONS and minutes is not None:
                emotions[key] = (value, float(minutes))
            else:
                raise BadReportInput(
                    f"“{item.strip()}” for {name}: the known names are presence, engagement and "
                    f"{', '.join(EMOTIONS)}, and each emotion needs its minutes, e.g. happy=0.80 (5.00min)."
                )
            if not 0 <= value <= 1:
                raise BadReportInput(f"“{item.strip()}” for {name}: values must lie between 0 and 1.")
        out.append(InputEntry(name, values.get("presence"), values.get("engagement"), emotions))
    if not out:
        raise BadReportInput("The report input is empty: it needs at least one “Name: …” entry.")
    return out


def apply_input(facts: LectureFacts, text: str) -> LectureFacts:
    """Facts with the per-student figures (names, presence, engagement, emotions) taken from an
    edited input string. Students are matched by name, else by position; time-based figures
    (periods, halves, eye closure) stay only with a student whose engagement is unchanged. The
    class engagement becomes the mean of the students', emotion shares are recomputed."""
    if text.strip() == input_string(facts).strip():
        return facts
    by_name = {s.name: s for s in facts.students}
    students = []
    for i, e in enumerate(parse_input(text)):
        base = by_name.get(e.name) or (facts.students[i] if i < len(facts.students) else StudentFacts(e.name))
        emotions: tuple[EmotionFact, ...] = ()
        if e.emotions and not facts.attention_only:
            total = sum(m for _, m in e.emotions.values()) or 1.0
            emotions = tuple(
                sorted(
                    (EmotionFact(k, m / total, m, c) for k, (c, m) in e.emotions.items()),
                    key=lambda x: (-(x.minutes or 0), x.emotion),
                )
            )
        keep = (
            e.engagement is not None
            and base.engagement is not None
            and round(e.engagement, 2) == round(base.engagement, 2)
        )
        students.append(
            replace(
                base,
                name=e.name,
                presence=e.presence if e.presence is not None else base.presence,
                engagement=e.engagement,
                emotions=emotions,
                first_half=base.first_half if keep else None,
                second_half=base.second_half if keep else None,
                low_periods=base.low_periods if keep else (),
                high_periods=base.high_periods if keep else (),
                fatigue=base.fatigue if keep else None,
            )
        )
    counts: dict[str, float] = {}
    for s in students:
        for em in s.emotions:
            counts[em.emotion] = counts.get(em.emotion, 0.0) + (em.minutes or 0.0)
    total = sum(counts.values()) or 1.0
    class_emotions = tuple(
        sorted((EmotionFact(k, v / total) for k, v in counts.items()), key=lambda x: (-x.share, x.emotion))
    )
    engs = [s.engagement for s in students if s.engagement is not None]
    engagement = sum(engs) / len(engs) if engs else None
    if engagement is not None and facts.engagement is not None and abs(engagement - facts.engagement) < 0.005:
        engagement = facts.engagement
    same = engagement == facts.engagement
    return replace(
        facts,
        students=tuple(students),
        emotions=class_emotions,
        engagement=engagement,
        presence=sum(s.presence for s in students) / len(students),
        first_half=facts.first_half if same else None,
        second_half=facts.second_half if same else None,
        low_periods=facts.low_periods if same else (),
        high_periods=facts.high_periods if same else (),
        fatigue=facts.fatigue if same else None,
        edited=True,
    )


# --- facts text for prompts ------------------------------------------------------------------------


def _describe(x: LectureFacts | StudentFacts, attention_only: bool) -> list[str]:
    lines = []
    if x.presence is not None:
        lines.append(f"present {fmt_pct(x.presence)} of the time")
    if x.engagement is not None:
        line = f"engagement {fmt_pct(x.engagement)}"
        if x.first_half is not None and x.second_half is not None:
            line += f" (first half {fmt_pct(x.first_half)}, second half {fmt_pct(x.second_half)})"
        lines.append(line)
    for p in x.low_periods:
        lines.append(f"engagement low at {fmt_span(p)}: {fmt_pct(p.engagement)}")
    for p in x.high_periods:
        lines.append(f"engagement high at {fmt_span(p)}: {fmt_pct(p.engagement)}")
    if not attention_only:
        for e in x.emotions[:3]:
            lines.append(f"{e.emotion} {fmt_pct(e.share)} of readings")
    return lines


def facts_text(facts: LectureFacts, *, students: bool = True, only: StudentFacts | None = None) -> str:
    """The facts as short lines, the only figures a prompt offers the model.

    Args:
        students: add a line per student (else the class only).
        only: just this student's line.
    """
    if only is not None:
        return f"{only.name}: " + "; ".join(_describe(only, facts.attention_only) or ["no figures"]) + "."
    n = len(facts.students)
    lines = [
        f"Lecture: {fmt_duration(facts.duration_s)} long, {n} student{'s' if n != 1 else ''}.",
        "Class: " + "; ".join(_describe(facts, facts.attention_only) or ["no engagement measured"]) + ".",
    ]
    if students:
        for s in facts.students:
            lines.append(f"{s.name}: " + "; ".join(_describe(s, facts.attention_only) or ["no figures"]) + ".")
    return "\n".join(lines)
