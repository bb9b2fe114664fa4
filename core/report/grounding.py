"""Claims check: every number, name and direction word in a report must agree with the facts.

Numbers are matched at the precision they are written in (0.7 matches 0.72; 45% matches a share
of 0.452), moments written m:ss must be moments the facts mention (h:mm h: lengths of an hour or
more), number words (two … twelve) count as numbers, and a name is anything name-like that is
not a student of the lecture: an unknown "Student N", a roster name of someone else, or a
capitalised word that is no ordinary word where it stands. In attention-only mode any emotion
word is a failure too.

Direction words are claims about a subject (the student the sentence names, else the class):
    low / high (and poor, weak, strong, excellent ...): "low" holds when the subject's engagement
        is below `metrics.LOW_ENGAGEMENT`, or, in a sentence about a part of the lecture (a time
        or words like "at times", "dipped"), when the subject has a low-engagement period; "high"
        holds from `HIGH_CLAIM` up, or for a part, with a high-engagement period;
    rose / fell (increased, dropped, declined ...): the second half against the first by at
        least `TREND_CLAIM`, or a fall about a part with a low period;
    most / least (highest, lowest ...) beside a student's name: that student has the highest /
        lowest engagement of the class.
A negation just before the word ("not low", "didn't fall") turns the claim around.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.metrics import LOW_ENGAGEMENT
from core.report.facts import LectureFacts, StudentFacts

EMOTION_WORDS = re.compile(
    r"\b(angr\w*|anger|disgust\w*|fear\w*|afraid|scared|happ(?:y|iness|ier)|sad\w*|surpris\w*|neutral\w*|"
    r"emotion\w*|feelings?|mood\w*|smil\w*|frown\w*|joy\w*|upset|anxi\w*|expression\w*)\b",
    re.I,
)
NUMBER = re.compile(r"(?<![\w.])(\d+:\d{2}|\d+(?:\.\d+)?)(\s?%)?(?![\w])")
NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
}  # fmt: skip
# Capitalised words that are not names wherever they stand.
COMMON_CAPS = frozenset(
    "I ClassLens Pomodoro Technique Think Pair Share Q A OK AI TL DR Note Evidence Advice Summary Caveat Class "
    "Report Lecture Break Focus Study Motivational Learning Strategy Strategies Tips Tip Suggestion Suggestions "
    "Feedback For Written What Grounding".split()
)
# Sentence-initial words that read like a person when followed by e.g. "should" but are not.
NOT_PEOPLE = frozenset(
    "The This That These Those It They He She We You Your Our Their Everyone Everybody Someone Anyone Nobody "
    "Students Student Teachers Teacher Class Attention Focus Energy Engagement Each Every All Most Some Many "
    "Few One Both Either Neither There Here Learners Participation Concentration Tiredness Fatigue Interest "
    "Such Which Who Whoever What Whatever This Group Groups".split()
)
NAME_CONTEXT = re.compile(
    r"^\s*(?:'s|’s|should|seems|seemed|needs|needed|showed|shows|appeared|appears|looked|looks|was|is|has|had|"
    r"did|might|may|could|will)\b"
)
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
WORD = re.compile(r"[A-Za-z][A-Za-z’']*")


HIGH_CLAIM = 0.7
TREND_CLAIM = 0.03
LOW_WORDS = frozenset("low lower poor weak weaker lacking disengaged distracted inattentive".split())
HIGH_WORDS = frozenset("high higher strong stronger excellent outstanding attentive".split())
RISE_WORDS = frozenset("rose rise rising rises risen increased increase increasing improved improving grew".split())
FALL_WORDS = frozenset(
    "fell fall falling falls fallen dropped drop dropping drops declined decline declining decreased decrease "
    "decreasing dipped dip dips waned faded sank worsened".split()
)
MOST_WORDS = frozenset("most highest best top".split())
LEAST_WORDS = frozenset("least lowest worst".split())
NEGATIONS = frozenset("not never no n't hardly neither nor without".split())
PART_WORDS = re.compile(
    r"\d+:\d{2}|\b(at times|at one point|for a while|in parts?|some parts?|moments?|periods?|stretch\w*|dips?|dipped|"
    r"minutes?|while|during|around|start|beginning|end|middle)\b",
    re.I,
)
ABOUT_ENGAGEMENT = re.compile(
    r"\b(attention|engage\w*|focus\w*|concentrat\w*|attentive|inattentive|distracted)\b", re.I
)


@dataclass(frozen=True)
class Problem:
    """One unsupported item. kind: "number", "name", "emotion" or "claim"; token: as written;
    detail: what the facts say instead (claims)."""

    kind: str
    token: str
    sentence: str
    detail: str = ""

    def describe(self) -> str:
        """In plain words for a teacher."""
        if self.kind == "number":
            return f"it wrote “{self.token}”, a figure or time that is not in the measurements"
        if self.kind == "name":
            return "it named someone who is not a student of this lecture"
        if self.kind == "emotion":
            return f"it mentioned emotions (“{self.token}”) although this report leaves emotions out"
        return f"it said “{self.token}”, but {self.detail}"


@dataclass(frozen=True)
class Grounding:
    """Outcome of a check; ok when there is no problem."""

    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _matches(value: float, decimals: int, percent: bool, figures: Iterable[float]) -> bool:
    for a in figures:
        candidates = (a * 100, a) if percent else (a,)
        for c in candidates:
            if round(c, decimals) == round(value, decimals) or (decimals == 0 and abs(c - value) < 0.5):
                return True
    return False


def _mask_names(text: str, names: Iterable[str]) -> str:
    for n in sorted({n for n in names if n}, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(n)}(?!\w)", lambda m: "§" * len(m.group(0)), text)
    return text


def _sentence_starts(text: str) -> set[int]:
    """Character offsets where a sentence, line, list item or heading starts."""
    starts = {0}
    for m in re.finditer(r"(?:^|[.!?:;(\"“_]|\*\*|\n)[\s*#>\-–—•_]*", text):
        starts.add(m.end())
    return starts


def _subject(sentence: str, facts: LectureFacts) -> tuple[str, LectureFacts | StudentFacts]:
    """The student a sentence names (the first one), else the class."""
    named = [s for s in facts.students if re.search(rf"(?<!\w){re.escape(s.name)}(?!\w)", sentence)]
    hits = [(sentence.find(s.name), s) for s in named]
    if hits:
        _, s = min(hits, key=lambda h: h[0])
        return f"{s.name}'s", s
    return "the class's", facts


def _pct(x: float | None) -> str:
    return "not measured" if x is None else f"{round(100 * x)}%"


def claims(sentence: str, facts: LectureFacts) -> list[Problem]:
    """Direction words of one sentence that the facts do not support (see the module docstring)."""
    if not ABOUT_ENGAGEMENT.search(sentence) and not any(
        s.name in sentence for s in facts.students
    ):  # a sentence about pace or slides, not about measured engagement
        return []
    who, x = _subject(sentence, facts)
    words = [w.lower() for w in re.findall(r"[A-Za-z]+(?:n't)?", sentence)]
    part = bool(PART_WORDS.search(sentence))
    eng = x.engagement
    out: list[Problem] = []
    for i, w in enumerate(words):
        negated = any(n in NEGATIONS or n.endswith("n't") for n in words[max(0, i - 3) : i])
        kind = (
            "low" if w in LOW_WORDS else "high" if w in HIGH_WORDS else "rise" if w in RISE_WORDS
            else "fall" if w in FALL_WORDS else "most" if w in MOST_WORDS else "least" if w in LEAST_WORDS else None
        )  # fmt: skip
        if kind is None:
            continue
        if negated:
            kind = {"low": "high", "high": "low", "rise": "fall", "fall": "rise"}.get(kind, kind)
            if kind in ("most", "least"):
                continue
        first, second = x.first_half, x.second_half
        trend = None if first is None or second is None else second - first
        ok, detail = True, ""
        if kind == "low":
            ok = (eng is not None and eng < LOW_ENGAGEMENT) or (part and bool(x.low_periods))
            detail = f"{who} engagement was {_pct(eng)}" + ("" if x.low_periods else " with no low stretch")
        elif kind == "high":
            ok = (eng is not None and eng >= HIGH_CLAIM) or (part and bool(x.high_periods))
            detail = f"{who} engagement was {_pct(eng)}"
        elif kind == "rise":
            ok = trend is not None and trend >= TREND_CLAIM
            detail = f"{who} engagement went from {_pct(first)} in the first half to {_pct(second)} in the second"
        elif kind == "fall":
            ok = (trend is not None and trend <= -TREND_CLAIM) or (part and bool(x.low_periods))
            detail = f"{who} engagement went from {_pct(first)} in the first half to {_pct(second)} in the second"
        elif x is not facts and len(facts.students) > 1:
            known = [s for s in facts.students if s.engagement is not None]
            if known and x.engagement is not None:
                best = max(known, key=lambda s: s.engagement or 0.0)
                worst = min(known, key=lambda s: s.engagement or 0.0)
                target = best if kind == "most" else worst
                ok = target.name == x.name
                detail = f"{target.name} had the {'highest' if kind == 'most' else 'lowest'} engagement"
        if not ok:
            out.append(Problem("claim", w, sentence, detail))
    return out


GROUNDING_NOTE_PREFIX = "_About the wording: "  # starts the writer's closing note (core.report.writers)
GROUNDING_NOTE = re.compile(r"\n" + re.escape(GROUNDING_NOTE_PREFIX) + r"[^\n]*_\s*$")


def check(
    text: str,
    facts: LectureFacts,
    other_names: Iterable[str] = (),
    allowed_names: Iterable[str] = (),
    *,
    check_claims: bool = True,
) -> Grounding:
    """Every number, name, direction word (and in attention-only mode, emotion word) of `text`
    against `facts`.

    Args:
        other_names: people known to ClassLens who are not in this lecture (e.g. the roster).
        allowed_names: names that are not facts but may appear (the writing model's title).
        check_claims: also check direction words (low/high, rose/fell, most/least).
    """
    problems: list[Problem] = []
    # The writer's closing note on what it replaced ("_About the wording: ..._") is
    # ClassLens's own bookkeeping, not a statement about the lecture: its counts are not facts.
    text = GROUNDING_NOTE.sub("", text)
    known = set(facts.names) | {facts.file_name} | set(allowed_names)
    figures = facts.figures()
    times = facts.times()
    hours = facts.hours()
    for sentence in [s for s in SENTENCE.split(text) if s.strip()]:
        masked = _mask_names(sentence, known)
        for other in other_names:
            if other and other not in known and re.search(rf"(?<!\w){re.escape(other)}(?!\w)", masked):
                problems.append(Problem("name", other, sentence))
        for m in re.finditer(r"\bStudent\s+\d+\b", masked):
            problems.append(Problem("name", m.group(0), sentence))
        masked = re.sub(r"\bStudent\s+\d+\b", lambda m: "§" * len(m.group(0)), masked)
        for m in NUMBER.finditer(masked):
            token, percent = m.group(1), bool(m.group(2))
            if ":" in token and re.match(r"\s?h\b", masked[m.end() :]):  # h:mm h, a length
                hh, mm = token.split(":")
                if int(hh) * 60 + int(mm) not in hours:
                    problems.append(Problem("number", token, sentence))
                continue
            if ":" in token:
                mins, secs = token.split(":")
                if int(mins) * 60 + int(secs) not in times:
                    problems.append(Problem("number", token, sentence))
                continue
            decimals = len(token.split(".")[1]) if "." in token else 0
            if not _matches(float(token), decimals, percent, figures):
                problems.append(Problem("number", m.group(0).strip(), sentence))
        for m in WORD.finditer(masked):
            w = m.group(0)
            if w.lower() in NUMBER_WORDS and not _matches(NUMBER_WORDS[w.lower()], 0, False, figures):
                problems.append(Problem("number", w, sentence))
        starts = _sentence_starts(masked)
        for m in WORD.finditer(masked):
            w = m.group(0).rstrip("'’")
            base = re.sub(r"['’]s$", "", w)
            if not base[:1].isupper() or base in COMMON_CAPS or (base.isupper() and len(base) <= 3):
                continue
            if m.start() in starts:
                if base not in NOT_PEOPLE and NAME_CONTEXT.match(masked[m.end() - (len(w) - len(base)) :]):
                    problems.append(Problem("name", base, sentence))
            else:
                problems.append(Problem("name", base, sentence))
        if facts.attention_only:
            for m in EMOTION_WORDS.finditer(masked):
                problems.append(Problem("emotion", m.group(0), sentence))
        if check_claims:
            problems.extend(claims(sentence, facts))
    return Grounding(tuple(problems))


def repair(text: str, facts: LectureFacts, other_names: Iterable[str] = ()) -> tuple[str, list[Problem]]:
    """Drop every sentence that fails the check (lines kept); returns the kept text and what was removed."""
    removed: list[Problem] = []
    lines = []
    for line in text.split("\n"):
        kept = []
        for sentence in re.split(r"(?<=[.!?])\s+", line):
            g = check(sentence, facts, other_names) if sentence.strip() else Grounding(())
            if g.ok:
                kept.append(sentence)
            else:
                removed.extend(g.problems)
        if kept or not line.strip():
            lines.append(" ".join(kept))
    return "\n".join(lines).strip(), removed
