"""Grounding check: every number and name in a report must come from the lecture's facts.

Numbers are matched at the precision they are written in (0.7 matches 0.72; 45% matches a share
of 0.452), moments written m:ss must be moments the facts mention, number words (two … twelve)
count as numbers, and a name is anything name-like that is not a student of the lecture: an
unknown "Student N", a roster name of someone else, or a capitalised word that is no ordinary
word where it stands. In attention-only mode any emotion word is a failure too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.report.facts import LectureFacts

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


@dataclass(frozen=True)
class Problem:
    """One ungrounded item. kind: "number", "name" or "emotion"; token: as written."""

    kind: str
    token: str
    sentence: str

    def describe(self) -> str:
        what = {"number": "a number", "name": "a name", "emotion": "an emotion word"}[self.kind]
        return f"{what} not in the facts: “{self.token}”"


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


GROUNDING_NOTE_PREFIX = "_Grounding: "  # starts the writer's closing note (core.report.writers)
GROUNDING_NOTE = re.compile(r"\n" + re.escape(GROUNDING_NOTE_PREFIX) + r"[^\n]*_\s*$")


def check(
    text: str, facts: LectureFacts, other_names: Iterable[str] = (), allowed_names: Iterable[str] = ()
) -> Grounding:
    """Every number, name (and in attention-only mode, emotion word) of `text` against `facts`.

    Args:
        other_names: people known to ClassLens who are not in this lecture (e.g. the roster).
        allowed_names: names that are not facts but may appear (the writing model's title).
    """
    problems: list[Problem] = []
    # The writer's closing note on what it replaced ("_Grounding: ... 9 piece(s) ..._") is
    # ClassLens's own bookkeeping, not a statement about the lecture: its counts are not facts.
    text = GROUNDING_NOTE.sub("", text)
    known = set(facts.names) | {facts.file_name} | set(allowed_names)
    figures = facts.figures()
    times = facts.times()
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
