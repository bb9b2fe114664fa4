"""Deterministic recommendations from the facts, each tied to the evidence that triggered it,
and the report layout every writer shares (summary, class, each student who needs it, caveat).

Advice is given only on enough evidence:
    break: only in a lecture of at least `MIN_BREAK_LECTURE_S`; before a class low-engagement
        period that lasts `MIN_PERIOD_S` or more and starts after the first `break_lead_s`, or at
        the midpoint when engagement fell by `TREND` or more from the first half to the second;
    focus: a class low-engagement period (of at least `MIN_PERIOD_S`), or class engagement below
        `metrics.LOW_ENGAGEMENT`;
    study: class tiredness only when at least `CLASS_TIRED_MIN` students and a third of the class
        each had their eyes closed in `TIRED_SHARE` of their moments with a closure of at least
        `TIRED_CLOSURE_S` (one student, or a blink, is never the class); a class low period
        (share the notes of that part);
    motivation: a class high-engagement period, engagement rising by `TREND` or more, a happy
        share of `HAPPY_SHARE` or more, or a negative share of `NEGATIVE_SHARE` or more;
    strategy: a negative share of `NEGATIVE_SHARE` or more or a surprise share of `SURPRISE_SHARE`
        or more; without emotions, a class low period.
A student seen for less than `MIN_STUDENT_S` gets no section (too little evidence); otherwise a
student gets a section only for what is theirs and not already said for the class: engagement
`STUDENT_GAP` or more below the class (or below the low threshold), a low period of their own
that does not overlap a class one, tiredness by the same test as above, or a negative share.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.metrics import LOW_ENGAGEMENT, Period
from core.report.facts import (
    NEGATIVE_EMOTIONS,
    LectureFacts,
    StudentFacts,
    fmt_duration,
    fmt_pct,
    fmt_span,
    fmt_time,
)

KINDS: dict[str, str] = {
    "break": "Break suggestion",
    "focus": "Focus tip",
    "study": "Study tip",
    "motivation": "Motivational feedback",
    "strategy": "Learning strategy",
}
MIN_BREAK_LECTURE_S = 600.0
MIN_PERIOD_S = 10.0
MIN_STUDENT_S = 5.0
TREND = 0.1
STUDENT_GAP = 0.15
TIRED_SHARE = 0.10
TIRED_CLOSURE_S = 3.0
CLASS_TIRED_MIN = 2
HAPPY_SHARE = 0.30
NEGATIVE_SHARE = 0.25
SURPRISE_SHARE = 0.20
MAX_PERIODS = 3


@dataclass(frozen=True)
class Recommendation:
    """One recommendation. scope: "class" or a student's name; evidence and advice: sentences
    whose every figure comes from the facts."""

    kind: str
    scope: str
    evidence: str
    advice: str

    @property
    def title(self) -> str:
        return KINDS[self.kind]


def break_lead_s(facts: LectureFacts) -> float:
    """How long before a drop a break is suggested: 5 minutes from a 30-minute lecture, else 2."""
    return 300.0 if facts.duration_s >= 1800 else 120.0


def significant(periods: tuple[Period, ...]) -> list[Period]:
    """Periods long enough to act on (`MIN_PERIOD_S`), the lowest `MAX_PERIODS`, in time order."""
    long = [p for p in periods if p.duration_s >= MIN_PERIOD_S - 1e-9]
    return sorted(sorted(long, key=lambda p: p.engagement)[:MAX_PERIODS], key=lambda p: p.start_s)


def break_moments(facts: LectureFacts) -> list[float]:
    """The moments (seconds) a break may be suggested at (empty in a short lecture)."""
    if facts.duration_s < MIN_BREAK_LECTURE_S:
        return []
    lead = break_lead_s(facts)
    out = [p.start_s - lead for p in significant(facts.low_periods) if p.start_s >= 2 * lead]
    if _fell(facts):
        out.append(facts.midpoint_s)
    return out


def _fell(x: LectureFacts | StudentFacts) -> bool:
    return x.first_half is not None and x.second_half is not None and x.first_half - x.second_half >= TREND


def _rose(x: LectureFacts | StudentFacts) -> bool:
    return x.first_half is not None and x.second_half is not None and x.second_half - x.first_half >= TREND


def _share(x: LectureFacts | StudentFacts, names: tuple[str, ...]) -> float:
    return sum(e.share for e in x.emotions if e.emotion in names)


def tired(s: StudentFacts) -> bool:
    """Repeated, long eye closure: never a single blink."""
    f = s.fatigue
    return f is not None and f.closed_share >= TIRED_SHARE and f.longest_s >= TIRED_CLOSURE_S


def tired_students(facts: LectureFacts) -> list[StudentFacts]:
    return [s for s in facts.students if tired(s)]


def class_tired(facts: LectureFacts) -> bool:
    n = len(tired_students(facts))
    return n >= CLASS_TIRED_MIN and n * 3 >= len(facts.students)


def _overlaps(p: Period, others: list[Period]) -> bool:
    return any(min(p.end_s, q.end_s) - max(p.start_s, q.start_s) > 0.5 * p.duration_s for q in others)


def _class(facts: LectureFacts) -> list[Recommendation]:
    recs: list[Recommendation] = []
    lows = significant(facts.low_periods)
    emotions = () if facts.attention_only else facts.emotions
    negative = _share(facts, NEGATIVE_EMOTIONS) if emotions else 0.0

    def rec(kind: str, evidence: str, advice: str) -> None:
        recs.append(Recommendation(kind, "class", evidence, advice))

    # break: only in a lecture long enough for one
    if facts.duration_s >= MIN_BREAK_LECTURE_S:
        lead = break_lead_s(facts)
        for p in lows:
            if p.start_s < 2 * lead:
                continue
            before = f", after {fmt_pct(p.before)} just before" if p.before is not None else ""
            rec(
                "break",
                f"Class engagement fell to {fmt_pct(p.engagement)} at {fmt_span(p)}{before}.",
                f"Plan a short break or a change of activity around {fmt_time(p.start_s - lead)}, before that dip.",
            )
        if _fell(facts):
            assert facts.first_half is not None and facts.second_half is not None
            rec(
                "break",
                f"Class engagement went from {fmt_pct(facts.first_half)} in the first half to "
                f"{fmt_pct(facts.second_half)} in the second half.",
                f"Put a short break at the midpoint, around {fmt_time(facts.midpoint_s)}.",
            )
    # focus
    if lows:
        rec(
            "focus",
            "Class engagement was low at " + ", ".join(f"{fmt_span(p)} ({fmt_pct(p.engagement)})" for p in lows) + ".",
            "Before those parts, say what is coming and why it matters, and ask the room a short question to bring "
            "eyes back to the front.",
        )
    elif facts.engagement is not None and facts.engagement < LOW_ENGAGEMENT:
        rec(
            "focus",
            f"Class engagement was {fmt_pct(facts.engagement)} over the lecture.",
            "Signpost the structure of the lecture and use the board or slides as one clear point of focus.",
        )
    # study
    if class_tired(facts):
        names = [s.name for s in tired_students(facts)]
        rec(
            "study",
            f"{len(names)} of {len(facts.students)} students had their eyes closed for long stretches: "
            + ", ".join(names)
            + ".",
            "Tiredness is possible across the room: keep the next session shorter or split it with a pause, and "
            "suggest reviewing the material the next day rather than late at night.",
        )
    if lows:
        rec(
            "study",
            f"Class engagement dipped at {fmt_span(lows[0])}.",
            "Share the notes or slides of that part so it can be reviewed afterwards, with a couple of questions "
            "to check it was understood.",
        )
    # motivation
    highs = sorted(significant(facts.high_periods), key=lambda p: -p.engagement)[:1]
    if highs:
        rec(
            "motivation",
            f"Class engagement reached {fmt_pct(highs[0].engagement)} at {fmt_span(highs[0])}.",
            "Tell the class what went well in that part and build on the same kind of activity.",
        )
    elif _rose(facts):
        assert facts.first_half is not None and facts.second_half is not None
        rec(
            "motivation",
            f"Class engagement rose from {fmt_pct(facts.first_half)} to {fmt_pct(facts.second_half)}.",
            "Acknowledge the growing engagement and keep the pace that produced it.",
        )
    happy = facts.emotion("happy") if emotions else None
    if happy is not None and happy.share >= HAPPY_SHARE:
        rec(
            "motivation",
            f"The top expression was happy in {fmt_pct(happy.share)} of the class's face readings.",
            "Name what worked and praise the participation: positive feedback makes it likely to happen again.",
        )
    if negative >= NEGATIVE_SHARE:
        rec(
            "motivation",
            f"Angry, disgusted, fearful or sad expressions made up {fmt_pct(negative)} of the class's readings.",
            "Acknowledge that the material is demanding and praise effort and progress rather than speed.",
        )
    # strategy
    surprise = facts.emotion("surprise") if emotions else None
    if negative >= NEGATIVE_SHARE or (surprise is not None and surprise.share >= SURPRISE_SHARE):
        share, what = (negative, "Negative expressions") if negative >= NEGATIVE_SHARE else (
            surprise.share if surprise else 0.0, "Surprise")  # fmt: skip
        rec(
            "strategy",
            f"{what} made up {fmt_pct(share)} of the class's readings.",
            "Check understanding with a quick question or a worked example before moving on, and let students "
            "explain a step to each other.",
        )
    elif not emotions and lows:
        rec(
            "strategy",
            f"Class engagement was lowest at {fmt_span(lows[0])}.",
            "Turn that part into active learning: a short problem to solve in pairs, then a quick share-out.",
        )
    return recs


def _student(s: StudentFacts, facts: LectureFacts) -> list[Recommendation]:
    """What is particular to one student (nothing the class section already says)."""
    recs: list[Recommendation] = []
    name = s.name
    if s.seconds_present < MIN_STUDENT_S:
        return recs

    def rec(kind: str, evidence: str, advice: str) -> None:
        recs.append(Recommendation(kind, name, evidence, advice))

    class_lows = significant(facts.low_periods)
    own = [p for p in significant(s.low_periods) if not _overlaps(p, class_lows)]
    behind = (
        s.engagement is not None
        and facts.engagement is not None
        and (facts.engagement - s.engagement >= STUDENT_GAP or s.engagement < LOW_ENGAGEMENT)
        and len(facts.students) > 1
    )
    if behind:
        assert s.engagement is not None and facts.engagement is not None
        rec(
            "focus",
            f"{name}'s engagement was {fmt_pct(s.engagement)}, against {fmt_pct(facts.engagement)} for the class.",
            f"Check in with {name} after the lecture: ask how the pace felt and whether they can see and hear "
            "well from their seat.",
        )
    if own:
        p = own[0]
        rec(
            "strategy",
            f"{name}'s engagement fell to {fmt_pct(p.engagement)} at {fmt_span(p)}, while the class held up.",
            f"Next time, bring {name} back in around that point with a direct, easy question.",
        )
    if tired(s) and not class_tired(facts):
        assert s.fatigue is not None
        rec(
            "study",
            f"{name}'s eyes looked closed in {fmt_pct(s.fatigue.closed_share)} of their moments, the longest "
            f"stretch {fmt_duration(s.fatigue.longest_s)}.",
            f"{name} may have been tired, or looking down at notes: ask them before drawing a conclusion.",
        )
    negative = _share(s, NEGATIVE_EMOTIONS) if not facts.attention_only else 0.0
    if negative >= NEGATIVE_SHARE and _share(facts, NEGATIVE_EMOTIONS) < NEGATIVE_SHARE:
        rec(
            "motivation",
            f"Angry, disgusted, fearful or sad expressions made up {fmt_pct(negative)} of {name}'s readings.",
            f"Offer {name} a word of encouragement and a chance to ask about anything that was unclear.",
        )
    return recs


def recommendations(facts: LectureFacts) -> list[Recommendation]:
    """The class's recommendations, then each student's who needs one (none repeated).

    With one student the class figures are that student's, so only the class section is written
    (the tiredness test then looks at that one student).
    """
    if len(facts.students) == 1:
        out = _class(facts)
        s = facts.students[0]
        if tired(s):
            assert s.fatigue is not None
            out.append(
                Recommendation(
                    "study",
                    "class",
                    f"{s.name}'s eyes looked closed in {fmt_pct(s.fatigue.closed_share)} of their moments, the "
                    f"longest stretch {fmt_duration(s.fatigue.longest_s)}.",
                    f"{s.name} may have been tired, or looking down at notes: ask them before drawing a conclusion.",
                )
            )
        return out
    out = _class(facts)
    for s in facts.students:
        out.extend(_student(s, facts))
    return out


def summary(facts: LectureFacts) -> str:
    """A short overall summary (every figure from the facts)."""
    n = len(facts.students)
    parts = [f"{n} student{'s' if n != 1 else ''} seen in {facts.file_name} ({fmt_duration(facts.duration_s)} long)."]
    if facts.presence is not None and n:
        parts.append(f"On average a student was in view {fmt_pct(facts.presence)} of the time.")
    if facts.engagement is not None:
        line = f"Class engagement was {fmt_pct(facts.engagement)}"
        if facts.first_half is not None and facts.second_half is not None:
            line += f": {fmt_pct(facts.first_half)} in the first half and {fmt_pct(facts.second_half)} in the second"
        parts.append(line + ".")
        lows = significant(facts.low_periods)
        if lows:
            parts.append("It dipped at " + ", ".join(fmt_span(p) for p in lows) + ".")
    else:
        parts.append("Engagement could not be judged for this lecture.")
    if not facts.attention_only and facts.emotions:
        top = facts.emotions[0]
        parts.append(f"The most frequent expression was {top.emotion} ({fmt_pct(top.share)} of face readings).")
    return " ".join(parts)


def caveat(facts: LectureFacts) -> str:
    if facts.attention_only:
        return (
            "These figures come from head direction and eye openness seen by a camera. They show where faces "
            "pointed and whether eyes were open, not what anyone thought or understood; a student looking down "
            "may be taking notes. Use them as a prompt for your own observation, never to grade or judge a student."
        )
    return (
        "These figures come from head direction, eye openness and facial expression seen by a camera. They show "
        "where faces pointed and what a face looked like, not what anyone thought, felt or understood; a student "
        "looking down may be taking notes, and expression models are often wrong on individual faces. Use them as "
        "a prompt for your own observation, never to grade or judge a student."
    )


def render(
    facts: LectureFacts,
    recs: list[Recommendation],
    summary_text: str,
    written_by: str,
    notes: dict[str, str] | None = None,
) -> str:
    """The report as Markdown (readable as plain text too). A sentence already written is not
    repeated. notes: optional scope -> a worded note shown at the top of that section."""
    lines = [f"# Lecture report: {facts.file_name}", "", f"_{written_by}_", "", "## Summary", "", summary_text, ""]
    seen: set[tuple[str, str]] = set()
    scopes = ["class"] + [s.name for s in facts.students]
    for scope in scopes:
        items = [r for r in recs if r.scope == scope and (r.advice, r.evidence) not in seen]
        if not items:
            continue
        lines += ["## For the class" if scope == "class" else f"## For {scope}", ""]
        if notes and notes.get(scope):
            lines += [notes[scope], ""]
        for r in items:
            seen.add((r.advice, r.evidence))
            lines.append(f"- **{r.title}.** {r.advice}  \n  Evidence: {r.evidence}")
        lines.append("")
    if not recs:
        lines += ["No recommendation: nothing in the figures calls for one.", ""]
    lines += ["## What these signals can and cannot tell", "", caveat(facts), ""]
    return "\n".join(lines)


def report_text(facts: LectureFacts) -> str:
    """The rules writer's whole report."""
    return render(facts, recommendations(facts), summary(facts), "Written by the rules writer (deterministic).")
