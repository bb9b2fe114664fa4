"""Deterministic recommendations from the facts, each tied to the evidence that triggered it,
and the report layout every writer shares (summary, class, each student who needs it, caveat).

The five kinds and their triggers (for the class, and for each student on their own figures):
    break: a low-attention period (a break one lead before it), or attention lower in the second
        half than in the first by 0.1 or more (a break at the midpoint);
    focus: a low-attention period, or mean attention below `LOW_ATTENTION`;
    study: eyes closed in 10% or more of samples or a closure of 1.5 s or longer (tiredness), or a
        low-attention period (review what was covered then);
    motivation: a high-attention period, attention rising by 0.1 or more, a happy share of 30% or
        more, or a negative share (angry, disgust, fear, sad) of 25% or more (encouragement);
    strategy: a negative share of 25% or more or a surprise share of 20% or more; in attention-only
        mode (or without emotions) a low-attention period.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.report.facts import (
    LOW_ATTENTION,
    NEGATIVE_EMOTIONS,
    LectureFacts,
    StudentFacts,
    fmt_att,
    fmt_min,
    fmt_pct,
    fmt_s,
    fmt_time,
)

KINDS: dict[str, str] = {
    "break": "Break suggestion",
    "focus": "Focus tip",
    "study": "Study tip",
    "motivation": "Motivational feedback",
    "strategy": "Learning strategy",
}
TREND = 0.1
FATIGUE_SHARE = 0.10
FATIGUE_LONGEST_S = 1.5
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


def _share(x: LectureFacts | StudentFacts, names: tuple[str, ...]) -> float:
    return sum(e.share for e in x.emotions if e.emotion in names)


def _for(x: LectureFacts | StudentFacts, facts: LectureFacts, who: str) -> list[Recommendation]:
    """Recommendations for the class (`x` is the facts) or one student (`x` is theirs)."""
    recs: list[Recommendation] = []
    subject = "the class's" if who == "class" else f"{who}'s"
    lows = sorted(x.low_periods, key=lambda p: p.attention)[:MAX_PERIODS]
    lows = sorted(lows, key=lambda p: p.start_s)
    emotions = () if facts.attention_only else x.emotions
    negative = _share(x, NEGATIVE_EMOTIONS) if emotions else 0.0

    def rec(kind: str, evidence: str, advice: str) -> None:
        recs.append(Recommendation(kind, who, evidence, advice))

    # break
    for p in lows:
        before = f" after {fmt_att(p.before)} before it" if p.before is not None else ""
        evidence = f"{subject} attention fell to {fmt_att(p.attention)} at {p.span()}{before}."
        at = facts.break_time(p)
        if at < p.start_s:
            advice = f"Suggest a short break or a change of activity around {fmt_time(at)}, before attention drops."
        else:
            advice = "Open with a short activating task: attention was low from the very start."
        rec("break", evidence, advice)
    if x.first_half is not None and x.second_half is not None and x.first_half - x.second_half >= TREND:
        rec(
            "break",
            f"{subject} attention went from {fmt_att(x.first_half)} in the first half to "
            f"{fmt_att(x.second_half)} in the second half.",
            f"Put a short break at the midpoint, around {fmt_time(facts.midpoint_s)}.",
        )
    # focus
    if lows:
        rec(
            "focus",
            f"{subject} attention was low at " + ", ".join(p.span() for p in lows) + ".",
            "Before those parts, say what is coming and why it matters, and ask a short question to the room "
            "to bring attention back to the front.",
        )
    elif x.attention is not None and x.attention < LOW_ATTENTION:
        rec(
            "focus",
            f"{subject} mean attention was {fmt_att(x.attention)}.",
            "Signpost the structure of the lecture and use the board or slides as one clear point of focus.",
        )
    # study
    fat = x.fatigue
    if fat is not None and (fat.closed_share >= FATIGUE_SHARE or fat.longest_s >= FATIGUE_LONGEST_S):
        rec(
            "study",
            f"eyes were closed in {fmt_pct(fat.closed_share)} of {subject} samples, "
            f"the longest closure {fmt_s(fat.longest_s)} s.",
            "Tiredness is likely: recommend shorter study sessions with rest in between, and reviewing the "
            "material the next day rather than late at night.",
        )
    if lows:
        rec(
            "study",
            f"attention was low at {lows[0].span()}.",
            "Share the notes or slides of that part so it can be reviewed afterwards, with a couple of "
            "questions to check it was understood.",
        )
    # motivation
    highs = sorted(x.high_periods, key=lambda p: -p.attention)[:1]
    if highs:
        rec(
            "motivation",
            f"{subject} attention reached {fmt_att(highs[0].attention)} at {highs[0].span()}.",
            "Tell the class what went well in that part and build on the same kind of activity.",
        )
    elif x.first_half is not None and x.second_half is not None and x.second_half - x.first_half >= TREND:
        rec(
            "motivation",
            f"{subject} attention rose from {fmt_att(x.first_half)} to {fmt_att(x.second_half)}.",
            "Acknowledge the growing engagement and keep the pace that produced it.",
        )
    happy = x.emotion("happy") if emotions else None
    if happy is not None and happy.share >= HAPPY_SHARE:
        rec(
            "motivation",
            f"happy was the dominant expression in {fmt_pct(happy.share)} of {subject} "
            f"samples ({fmt_min(happy.minutes)} min).",
            "Name what worked and praise the participation: positive feedback makes it likely to happen again.",
        )
    if negative >= NEGATIVE_SHARE:
        rec(
            "motivation",
            f"angry, disgusted, fearful or sad expressions made up {fmt_pct(negative)} of {subject} samples.",
            "Acknowledge that the material is demanding and praise effort and progress rather than speed.",
        )
    # strategy
    surprise = x.emotion("surprise") if emotions else None
    if negative >= NEGATIVE_SHARE or (surprise is not None and surprise.share >= SURPRISE_SHARE):
        share = negative if negative >= NEGATIVE_SHARE else (surprise.share if surprise else 0.0)
        what = "negative expressions" if negative >= NEGATIVE_SHARE else "surprise"
        rec(
            "strategy",
            f"{what} made up {fmt_pct(share)} of {subject} samples.",
            "Check understanding with a quick question or a worked example before moving on, and let students "
            "explain a step to each other.",
        )
    elif not emotions and lows:
        rec(
            "strategy",
            f"{subject} attention was low at {lows[0].span()}.",
            "Turn that part into active learning: a short problem to solve in pairs, then a quick share-out.",
        )
    return recs


def recommendations(facts: LectureFacts) -> list[Recommendation]:
    """The class's recommendations, then each student's (students with no trigger get none).

    With one student the class figures are that student's, so only the class section is written.
    """
    out = _for(facts, facts, "class")
    if len(facts.students) > 1:
        for s in facts.students:
            out.extend(_for(s, facts, s.name))
    return out


def summary(facts: LectureFacts) -> str:
    """A short overall summary (every figure from the facts)."""
    n = len(facts.students)
    parts = [f"{n} student{'s' if n != 1 else ''} seen in {facts.file_name} ({fmt_min(facts.duration_min)} min)."]
    if facts.attention is not None:
        line = f"Mean attention was {fmt_att(facts.attention)}"
        if facts.first_half is not None and facts.second_half is not None:
            line += f", {fmt_att(facts.first_half)} in the first half and {fmt_att(facts.second_half)} in the second"
        parts.append(line + ".")
        if facts.low_periods:
            spans = ", ".join(p.span() for p in facts.low_periods[:MAX_PERIODS])
            parts.append(f"Attention dropped at {spans}.")
    else:
        parts.append("Attention was not measured for this lecture.")
    if not facts.attention_only and facts.emotions:
        top = facts.emotions[0]
        parts.append(f"The most frequent expression was {top.emotion} ({fmt_pct(top.share)} of samples).")
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


def render(facts: LectureFacts, recs: list[Recommendation], summary_text: str, written_by: str) -> str:
    """The report as Markdown (readable as plain text too)."""
    lines = [f"# Lecture report: {facts.file_name}", "", f"_{written_by}_", "", "## Summary", "", summary_text, ""]
    scopes = ["class"] + [s.name for s in facts.students]
    for scope in scopes:
        items = [r for r in recs if r.scope == scope]
        if not items:
            continue
        lines += ["## For the class" if scope == "class" else f"## For {scope}", ""]
        for r in items:
            lines.append(f"- **{r.title}.** {r.advice}  \n  Evidence: {r.evidence}")
        lines.append("")
    if len(recs) == 0:
        lines += ["No recommendation: nothing in the figures calls for one.", ""]
    lines += ["## What these signals can and cannot tell", "", caveat(facts), ""]
    return "\n".join(lines)


def report_text(facts: LectureFacts) -> str:
    """The rules writer's whole report."""
    return render(facts, recommendations(facts), summary(facts), "Written by the rules writer (deterministic).")
