"""Lecture reports: facts from DuckDB -> writers (rules | local LM | endpoint) -> grounding check.

facts = build_facts(store, lecture_id)          # every figure and name a report may state
facts = apply_input(facts, edited_input_string)  # the seed's editable input string
report = generate(facts, "local", on_text=print) # rules | local | openai, checked and repaired
save_report(store, lecture_id, report.writer, report.model, report.text)
"""

from __future__ import annotations

from core.report.archive import list_reports, save_report
from core.report.facts import (
    BadReportInput,
    LectureFacts,
    StudentFacts,
    apply_input,
    build_facts,
    facts_text,
    input_string,
)
from core.report.grounding import Grounding, Problem, check, repair
from core.report.writers import (
    WRITERS,
    GeneratedReport,
    ReportConfig,
    ReportWriter,
    WriterUnavailable,
    make_writer,
)


def generate(
    facts: LectureFacts,
    writer: str,
    *,
    config: ReportConfig | None = None,
    on_text=None,
    progress=None,
    other_names: tuple[str, ...] = (),
) -> GeneratedReport:
    """Write a report with the writer called `writer`; see `core.report.writers`."""
    return make_writer(writer, config).write(facts, on_text=on_text, progress=progress, other_names=other_names)


__all__ = [
    "WRITERS",
    "BadReportInput",
    "GeneratedReport",
    "Grounding",
    "LectureFacts",
    "Problem",
    "ReportConfig",
    "ReportWriter",
    "StudentFacts",
    "WriterUnavailable",
    "apply_input",
    "build_facts",
    "check",
    "facts_text",
    "generate",
    "input_string",
    "list_reports",
    "make_writer",
    "repair",
    "save_report",
]
