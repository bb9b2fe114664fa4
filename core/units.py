"""How ClassLens writes times, lengths and counts for a teacher (pages, charts and reports)."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """A moment of the lecture as m:ss (minutes may exceed 59): 0:05, 25:00, 75:30."""
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def duration(seconds: float) -> str:
    """A length: m:ss below an hour (0:20, 12:05), h:mm h from an hour (1:05 h)."""
    s = max(0, round(seconds))
    if s < 3600:
        return clock(s)
    return f"{s // 3600}:{s % 3600 // 60:02d} h"


def span(seconds: float) -> str:
    """A short round length in words: `1 s`, `30 s`, `1 min`, `15 min`, `1 h`."""
    if seconds < 60:
        return f"{seconds:g} s"
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def plural(n: int, word: str, words: str | None = None) -> str:
    """`1 student`, `2 students` (`words` for an irregular plural)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def rate(per_second: float) -> str:
    """A sampling rate: `1 moment a second`, `2 moments a second`, `1 moment every 2 s`."""
    if 0 < per_second < 1:
        return f"1 moment every {1 / per_second:g} s"
    if per_second == int(per_second):
        return f"{plural(int(per_second), 'moment')} a second"
    return f"{per_second:g} moments a second"
