"""Report writers behind one interface, chosen by name: rules | local | openai.

Every writer builds the same report from the same recommendations (`core.report.rules`): the
figures, names, evidence and layout come from Python. A model writer only words the advice of
each recommendation and one overall sentence, streamed as it generates, within a time budget;
each worded piece is checked against the facts (`core.report.grounding`), a failing sentence is
removed and a piece left empty falls back to the rules writer's wording, and the result says so.

Configuration (environment, all optional):
    CLASSLENS_REPORT_WRITER: default writer name (default "local").
    CLASSLENS_REPORT_BUDGET_S: time budget of a model writer in seconds (default 240).
    CLASSLENS_LOCAL_MODEL: local model folder or .gguf file (see core.llm).
    CLASSLENS_OPENAI_URL: base URL of an OpenAI-compatible API, e.g. http://server:8000/v1 (off when unset).
    CLASSLENS_OPENAI_MODEL: model name at that endpoint.
    CLASSLENS_OPENAI_KEY_ENV: name of the environment variable holding the API key (default OPENAI_API_KEY).
"""

from __future__ import annotations

import json
import os
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

    writer: str = "local"
    budget_s: float = 240.0
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
    "You help a teacher act on what a classroom camera measured. Write plain, friendly English for the teacher. "
    "Never invent numbers, times or names: repeat only those given to you, or use none."
)


def _advice_messages(rec: rules.Recommendation, facts: LectureFacts) -> list[dict[str, str]]:
    who = "the whole class" if rec.scope == "class" else "one student"
    extra = " Do not mention emotions or facial expressions." if facts.attention_only else ""
    return [
        {"role": "system", "content": SYSTEM + extra},
        {
            "role": "user",
            "content": (
                f"Kind of advice: {rec.title}\nFor: {who}\nWhat was measured: {rec.evidence}\n"
                f"Suggested action: {rec.advice}\n\n"
                "Rewrite the suggested action as concrete advice for the teacher in at most two short sentences. "
                "Keep any time such as 0:05 exactly as written. Reply with the advice only."
            ),
        },
    ]


def _summary_messages(facts: LectureFacts) -> list[dict[str, str]]:
    extra = " Do not mention emotions or facial expressions." if facts.attention_only else ""
    return [
        {"role": "system", "content": SYSTEM + extra},
        {
            "role": "user",
            "content": (
                f"Measurements of one lecture:\n{facts_text(facts)}\n\n"
                "In one or two sentences, tell the teacher the main thing to take from this lecture and "
                "what to try next time. Use no numbers. Reply with those sentences only."
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
    """Words the rules writer's recommendations with a chat model (local or endpoint)."""

    def __init__(self, name: str, wording: Wording, budget_s: float = 240.0, max_new_tokens: int = 64) -> None:
        self.name = name
        self.wording = wording
        self.budget_s = budget_s
        self.max_new_tokens = max_new_tokens

    def write(self, facts: LectureFacts, *, on_text: TextSink | None = None, progress: Progress | None = None,
              other_names: tuple[str, ...] = ()) -> GeneratedReport:  # fmt: skip
        t0 = time.monotonic()
        recs = rules.recommendations(facts)
        emit = on_text or (lambda _t: None)
        report = GeneratedReport("", self.name, self.wording.title)
        jobs = len(recs) + 2
        out_of_time = 0

        def word(messages: list[dict[str, str]], fallback: str, label: str, i: int) -> str:
            nonlocal out_of_time
            left = self.budget_s - (time.monotonic() - t0)
            if progress is not None:
                progress(i / jobs, f"{label} ({time.monotonic() - t0:.0f} s of at most {self.budget_s:.0f} s)")
            if left <= 1:
                out_of_time += 1
                emit(fallback)
                return fallback
            call_start = time.monotonic() - t0
            text, n, first = self.wording.complete(
                messages, max_new_tokens=self.max_new_tokens, max_time_s=left, on_text=emit
            )
            report.tokens += n
            if first is not None and report.first_token_s is None:
                report.first_token_s = call_start + first
            kept, removed = grounding.repair(_clean(text), facts, other_names)
            report.removed.extend(removed)
            if not kept:
                report.replaced += 1
                emit(f" [replaced: {fallback}]")
                return fallback
            return kept

        header = (
            f"# Lecture report: {facts.file_name}\n\n_Recommendations worded by {self.wording.title}; "
            "figures from ClassLens._\n\n## Summary\n\n"
        )
        emit(header)
        base_summary = rules.summary(facts)
        emit(base_summary + " ")
        worded: list[rules.Recommendation] = []
        for i, rec in enumerate(recs, start=1):
            emit(f"\n\n- **{rec.title}** ({'class' if rec.scope == 'class' else rec.scope}): ")
            advice = word(_advice_messages(rec, facts), rec.advice, f"Wording recommendation {i} of {len(recs)}", i)
            worded.append(replace(rec, advice=advice))
        # The overall sentence comes last: the recommendations matter more when the budget is short.
        emit("\n\n")
        overall = word(_summary_messages(facts), "", "Writing the summary", len(recs) + 1)
        summary_text = f"{base_summary} {overall}".strip()
        text = rules.render(
            facts, worded, summary_text, f"Recommendations worded by {self.wording.title}; figures from ClassLens."
        )
        notes = []
        if report.replaced:
            notes.append(
                f"The grounding check replaced {report.replaced} piece(s) of model text with the rules writer's "
                "wording, because they stated a number, name or word not in the facts."
            )
        if report.removed and not report.replaced:
            notes.append("The grounding check removed sentences that stated a number or name not in the facts.")
        if out_of_time:
            notes.append(f"The time budget ran out: {out_of_time} piece(s) use the rules writer's wording.")
        g = grounding.check(text, facts, other_names, allowed_names=(self.wording.title,))
        if not g.ok:
            notes.append(
                "The model's report failed the grounding check as a whole and was replaced by the rules writer."
            )
            text = rules.report_text(facts)
            report.replaced = len(recs) + 1
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
