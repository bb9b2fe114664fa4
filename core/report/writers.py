"""Report writers behind one interface, chosen by name: rules | local | openai.

Every writer builds the same report from the same recommendations (`core.report.rules`, the
default writer): the figures, names, evidence and layout come from Python. A model writer only
words a short summary and a note for each student who has a section, streamed as it generates,
within a time budget (30 s by default); each worded piece is checked against the facts (numbers,
names and direction words, `core.report.grounding`), and a piece that fails is left out with a
plain-words note saying why.

Configuration (environment, all optional):
    CLASSLENS_REPORT_WRITER: default writer name (default "rules").
    CLASSLENS_REPORT_BUDGET_S: time budget of a model writer in seconds (default 30).
    CLASSLENS_LOCAL_MODEL: local model folder or .gguf file (see core.llm).
    CLASSLENS_OPENAI_URL: base URL of an OpenAI-compatible API, e.g. http://server:8000/v1 (off when unset).
    CLASSLENS_OPENAI_MODEL: model name at that endpoint.
    CLASSLENS_OPENAI_KEY_ENV: name of the environment variable holding the API key (default OPENAI_API_KEY).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from core.errors import ClassLensError
from core.report import grounding, rules
from core.report.facts import LectureFacts, facts_text

WRITERS: tuple[str, ...] = ("rules", "local", "openai")
TextSink = Callable[[str], None]
Progress = Callable[[float, str], None]


class WriterUnavailable(ClassLensError):
    """The chosen writer is not configured or its model is not installed."""


@dataclass(frozen=True)
class ReportConfig:
    """Which writer and model; from the environment with `from_env`."""

    writer: str = "rules"
    budget_s: float = 30.0
    local_model: str | None = None
    openai_url: str | None = None
    openai_model: str | None = None
    openai_key_env: str = "OPENAI_API_KEY"

    @classmethod
    def from_env(cls, **overrides: object) -> ReportConfig:
        env = os.environ
        c = cls(
            writer=env.get("CLASSLENS_REPORT_WRITER") or cls.writer,
            budget_s=float(env.get("CLASSLENS_REPORT_BUDGET_S") or cls.budget_s),
            local_model=env.get("CLASSLENS_LOCAL_MODEL") or None,
            openai_url=env.get("CLASSLENS_OPENAI_URL") or None,
            openai_model=env.get("CLASSLENS_OPENAI_MODEL") or None,
            openai_key_env=env.get("CLASSLENS_OPENAI_KEY_ENV") or cls.openai_key_env,
        )
        return replace(c, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]

    def local_model_path(self) -> Path:
        from core.llm import default_model_path

        return Path(self.local_model).expanduser() if self.local_model else default_model_path()

    def available(self) -> dict[str, bool]:
        """Writer name -> usable now (the local model is installed, the endpoint configured)."""
        p = self.local_model_path()
        local = (p / "config.json").is_file() or (p.is_file() and p.suffix == ".gguf")
        return {"rules": True, "local": local, "openai": bool(self.openai_url and self.openai_model)}


@dataclass
class GeneratedReport:
    """A written report and how it came about.

    Attributes:
        writer: the writer chosen (rules | local | openai).
        model: model title, None for the rules writer.
        replaced: pieces of model text that failed the grounding check or the time budget and were
            replaced by the rules writer's wording (0 = none).
        removed: ungrounded items found in the model's text (what the check caught).
        notes: sentences for the teacher about grounding and budget.
        first_token_s: seconds from start to the first generated text (model writers).
    """

    text: str
    writer: str
    model: str | None
    grounded: bool = True
    replaced: int = 0
    removed: list[grounding.Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    first_token_s: float | None = None
    tokens: int = 0


class Wording(Protocol):
    """A chat model that completes messages, streaming text pieces to `on_text`."""

    title: str

    def complete(
        self, messages: list[dict[str, str]], *, max_new_tokens: int, max_time_s: float, on_text: TextSink | None
    ) -> tuple[str, int, float | None]:
        """Returns (text, tokens generated, seconds to the first token or None)."""
        ...


class ReportWriter(Protocol):
    name: str

    def write(self, facts: LectureFacts, *, on_text: TextSink | None = None, progress: Progress | None = None,
              other_names: tuple[str, ...] = ()) -> GeneratedReport:  # fmt: skip
        """Write the report for `facts`, streaming text to `on_text` and progress in [0, 1]."""
        ...


class RulesWriter:
    name = "rules"

    def write(self, facts: LectureFacts, *, on_text: TextSink | None = None, progress: Progress | None = None,
              other_names: tuple[str, ...] = ()) -> GeneratedReport:  # fmt: skip
        t0 = time.monotonic()
        text = rules.report_text(facts)
        if on_text is not None:
            on_text(text)
        if progress is not None:
            progress(1.0, "done")
        g = grounding.check(text, facts, other_names)
        return GeneratedReport(text, "rules", None, grounded=g.ok, seconds=time.monotonic() - t0)


SYSTEM = (
    "You write for a teacher about one lecture a classroom camera measured. Plain, friendly English, short "
    "sentences. Use only the facts given; write no numbers, times or names that are not in them."
)


def _no_emotions(facts: LectureFacts) -> str:
    return " Do not mention emotions or facial expressions." if facts.attention_only else ""


def summary_messages(facts: LectureFacts) -> list[dict[str, str]]:
    """The prompt of the overall summary: the class's facts, two sentences, no numbers."""
    return [
        {"role": "system", "content": SYSTEM + _no_emotions(facts)},
        {
            "role": "user",
            "content": (
                f"Facts:\n{facts_text(facts, students=False)}\n\n"
                "In two short sentences, tell the teacher what stood out in this lecture and one thing to try "
                "next time. Use no numbers. Reply with the two sentences only."
            ),
        },
    ]


def note_messages(facts: LectureFacts, student: str, recs: list[rules.Recommendation]) -> list[dict[str, str]]:
    """The prompt of one student's note: that student's facts and the rules' advice for them."""
    s = next(x for x in facts.students if x.name == student)
    advice = " ".join(r.advice for r in recs)
    return [
        {"role": "system", "content": SYSTEM + _no_emotions(facts)},
        {
            "role": "user",
            "content": (
                f"Facts: {facts_text(facts, only=s)}\nAdvice: {advice}\n\n"
                f"In one short sentence, tell the teacher what to do for {student}. Use no numbers. "
                "Reply with the sentence only."
            ),
        },
    ]


def _clean(text: str) -> str:
    """One paragraph of whole sentences: no list markers, headings, quotes or a sentence cut off."""
    lines = [ln.strip().lstrip("-*•#> ").strip() for ln in text.strip().splitlines()]
    para = " ".join(ln for ln in lines if ln).strip().strip('"“”')
    end = max(para.rfind("."), para.rfind("!"), para.rfind("?"))
    return para[: end + 1] if end >= 0 else ""


class ModelWriter:
    """The rules writer decides; a chat model (local or endpoint) words the summary and a note for
    each student who has a section, within a time budget.

    Each worded piece is checked whole (numbers, names, direction words, emotions in attention-only
    mode); a piece that fails is left out and the report says so in plain words, with the rules
    writer's text standing in. Every recommendation, figure and piece of evidence is the rules
    writer's, unchanged.
    """

    def __init__(
        self,
        name: str,
        wording: Wording,
        budget_s: float = 30.0,
        summary_tokens: int = 60,
        note_tokens: int = 40,
        max_notes: int = 3,
    ) -> None:
        self.name = name
        self.wording = wording
        self.budget_s = budget_s
        self.summary_tokens = summary_tokens
        self.note_tokens = note_tokens
        self.max_notes = max_notes

    def write(self, facts: LectureFacts, *, on_text: TextSink | None = None, progress: Progress | None = None,
              other_names: tuple[str, ...] = ()) -> GeneratedReport:  # fmt: skip
        t0 = time.monotonic()
        recs = rules.recommendations(facts)
        emit = on_text or (lambda _t: None)
        report = GeneratedReport("", self.name, self.wording.title)
        students = [s.name for s in facts.students if any(r.scope == s.name for r in recs)][: self.max_notes]
        jobs = 1 + len(students)
        notes: list[str] = []
        out_of_time: list[str] = []

        def word(messages: list[dict[str, str]], tokens: int, label: str, i: int) -> str | None:
            left = self.budget_s - (time.monotonic() - t0)
            if progress is not None:
                progress(i / jobs, f"{label} ({time.monotonic() - t0:.0f} s of at most {self.budget_s:.0f} s)")
            if left <= 1:
                out_of_time.append(label.lower())
                return None
            call_start = time.monotonic() - t0
            text, n, first = self.wording.complete(messages, max_new_tokens=tokens, max_time_s=left, on_text=emit)
            report.tokens += n
            if first is not None and report.first_token_s is None:
                report.first_token_s = call_start + first
            cleaned = _clean(text)
            # The prompts ask for no numbers: figures come only from the rules writer, next to their
            # subject. A worded sentence with a figure is dropped even when the figure exists
            # somewhere in the facts (it may belong to another half, student or period).
            kept = [x for x in re.split(r"(?<=[.!?])\s+", cleaned) if x and not re.search(r"\d", x)]
            if cleaned and len(kept) < len(re.split(r"(?<=[.!?])\s+", cleaned)):
                notes.append(
                    f"A sentence of the {label.lower()} from the language model was dropped because it wrote "
                    "figures of its own; the figures in this report come from the measurements."
                )
            cleaned = " ".join(kept)
            if not cleaned:
                report.replaced += 1
                notes.append(f"The {label.lower()} from the language model was empty or cut off, so it was left out.")
                return None
            g = grounding.check(cleaned, facts, other_names)
            if not g.ok:
                report.replaced += 1
                report.removed.extend(g.problems)
                notes.append(
                    f"The {label.lower()} from the language model was left out because "
                    + "; ".join(dict.fromkeys(p.describe() for p in g.problems[:2]))
                    + "."
                )
                return None
            return cleaned

        emit(f"# Lecture report: {facts.file_name}\n\n## Summary\n\n")
        base_summary = rules.summary(facts)
        overall = word(summary_messages(facts), self.summary_tokens, "Summary", 0)
        summary_text = f"{overall}\n\n{base_summary}" if overall else base_summary
        worded: dict[str, str] = {}
        for i, name in enumerate(students, start=1):
            emit(f"\n\n{name}: ")
            mine = [r for r in recs if r.scope == name]
            note = word(note_messages(facts, name, mine), self.note_tokens, f"Note on {name}", i)
            if note:
                worded[name] = f"_{note}_"
        written_by = (
            f"Summary and notes worded by {self.wording.title}; recommendations, figures and evidence from the "
            "rules writer."
        )
        text = rules.render(facts, recs, summary_text, written_by, notes=worded)
        if out_of_time:
            notes.append(
                f"The time budget of {self.budget_s:.0f} s ran out before the language model reached: "
                + ", ".join(out_of_time)
                + "; the rules writer's text stands there."
            )
        g = grounding.check(text, facts, other_names, allowed_names=(self.wording.title,))
        if not g.ok:  # cannot happen with checked pieces, but the stored report must pass
            notes.append("The worded report did not pass the check as a whole, so this is the rules writer's report.")
            text = rules.report_text(facts)
        if notes:
            text = text.rstrip() + "\n\n" + grounding.GROUNDING_NOTE_PREFIX + " ".join(notes) + "_\n"
        report.text, report.notes = text, notes
        report.grounded = not report.removed and not out_of_time
        report.seconds = time.monotonic() - t0
        if progress is not None:
            progress(1.0, f"done in {report.seconds:.0f} s")
        return report


class LocalWording:
    """A local transformers model (core.llm), loaded once per path."""

    def __init__(self, path: Path) -> None:
        from core.llm import load_local_lm

        self.lm = load_local_lm(str(path))
        self.title = self.lm.title

    def complete(self, messages, *, max_new_tokens, max_time_s, on_text):  # type: ignore[no-untyped-def]
        from core.llm import generate

        return generate(self.lm, messages, max_new_tokens=max_new_tokens, max_time_s=max_time_s, on_text=on_text)


class EndpointWording:
    """Any OpenAI-compatible chat completions endpoint, streamed (server-sent events)."""

    def __init__(self, url: str, model: str, key_env: str) -> None:
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.key = os.environ.get(key_env)
        self.title = f"{model} at {url}"

    def complete(self, messages, *, max_new_tokens, max_time_s, on_text):  # type: ignore[no-untyped-def]
        import requests

        t0 = time.monotonic()
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        body = {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0,
                "stream": True}  # fmt: skip
        pieces: list[str] = []
        first: float | None = None
        try:
            with requests.post(self.url, json=body, headers=headers, stream=True, timeout=(10, max_time_s)) as r:
                if r.status_code != 200:
                    raise WriterUnavailable(f"The report endpoint answered {r.status_code}: {r.text[:200]}")
                for line in r.iter_lines(decode_unicode=True):
                    if not line or not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    delta = json.loads(data)["choices"][0].get("delta", {}).get("content") or ""
                    if delta:
                        first = first if first is not None else time.monotonic() - t0
                        pieces.append(delta)
                        if on_text is not None:
                            on_text(delta)
                    if time.monotonic() - t0 > max_time_s:
                        break
        except requests.RequestException as exc:
            raise WriterUnavailable(f"The report endpoint {self.url} could not be reached: {exc}") from exc
        return "".join(pieces), len(pieces), first


def make_writer(name: str, config: ReportConfig | None = None) -> ReportWriter:
    """The writer called `name` (rules | local | openai).

    Raises:
        WriterUnavailable: unknown name, endpoint not configured, or local model not installed.
    """
    config = config or ReportConfig.from_env()
    if name == "rules":
        return RulesWriter()
    if name == "local":
        from core.llm import LocalModelMissing

        try:
            return ModelWriter("local", LocalWording(config.local_model_path()), config.budget_s)
        except LocalModelMissing as exc:
            raise WriterUnavailable(str(exc)) from exc
    if name == "openai":
        if not (config.openai_url and config.openai_model):
            raise WriterUnavailable(
                "No report endpoint is configured: set CLASSLENS_OPENAI_URL and CLASSLENS_OPENAI_MODEL "
                "(and the key in the variable CLASSLENS_OPENAI_KEY_ENV names)."
            )
        return ModelWriter(
            "openai", EndpointWording(config.openai_url, config.openai_model, config.openai_key_env), config.budget_s
        )
    raise WriterUnavailable(f"Unknown report writer {name!r}; choose one of {', '.join(WRITERS)}.")
