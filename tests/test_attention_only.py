"""Attention-only mode everywhere: a lecture analysed without emotions shows no emotion word or
number on any page, in any export, input box or report; emotion columns of its CSVs are empty."""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import exports
from core.report import build_facts, check, generate, input_string
from core.store import EMOTION_COLUMNS
from tests.conftest import ROOT, fixture

EMOTION = re.compile(
    r"\b(angr\w*|disgust\w*|fear\w*|happ\w*|sad\w*|surpris\w*|neutral\w*|emotion\w*|expression\w*|anxi\w*|"
    r"confidence|positive)\b",
    re.I,
)


@pytest.fixture(scope="module")
def quiet_db(tmp_path_factory, models):
    """The real clip analysed in attention-only mode (no emotion model run)."""
    from core.pipeline import analyze
    from core.settings import Settings
    from core.store import Store

    store = Store(tmp_path_factory.mktemp("quiet") / "q.duckdb")
    result = analyze(fixture("WolfgangLanger_Pexels.mp4"), store, Settings(attention_only=True), models=models)
    return store, result.lecture_id


def test_exports_and_report_have_no_emotion(quiet_db):
    store, lid = quiet_db
    students = pd.read_csv(io.StringIO(exports.students_csv(store, lid)))
    emo_cols = [c for c in students.columns if EMOTION.search(c.replace("_", " "))]
    assert len(emo_cols) == 21 and students[emo_cols].isna().all().all()  # empty, not 0
    assert students["engagement"].notna().all() and (students["presence"] == 1.0).all()
    obs = pd.read_csv(io.StringIO(exports.observations_csv(store, lid)))
    assert obs[[*EMOTION_COLUMNS, "dominant_emotion", "dominant_conf"]].isna().all().all()
    doc = exports.emotions_json(store, lid)
    assert not EMOTION.search(doc) and json.loads(doc)["attention_only"] is True
    facts = build_facts(store, lid)
    assert facts.attention_only and not EMOTION.search(input_string(facts))
    report = generate(facts, "rules")
    assert not EMOTION.search(report.text.split("## What these signals")[0]) and check(report.text, facts).ok


def _page_text(at: AppTest) -> str:
    """Every piece of text a page shows: titles, captions, markdown, metrics, tables, inputs, charts."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "caption", "markdown", "info", "warning", "success", "error"):
        parts += [str(e.value) for e in at.get(kind)]
    parts += [f"{m.label} {m.value} {m.proto.help}" for m in at.metric]
    parts += [" ".join(map(str, d.value.columns)) for d in at.dataframe]
    parts += [f"{t.label} {t.value}" for t in at.text_area]
    parts += [e.label for e in at.expander]
    parts += [b.proto.label + " " + b.proto.help for b in at.get("download_button")]
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        parts.append(str(spec["layout"].get("title", {}).get("text", "")))
        parts += [str(t.get("name", "")) for t in spec["data"]]
    return "\n".join(parts)


@pytest.mark.parametrize("name", ["dashboard", "students", "report"])
def test_pages_show_no_emotion(quiet_db, monkeypatch, tmp_path, name):
    store, lid = quiet_db
    monkeypatch.setenv("CLASSLENS_DB", str(store.path))
    monkeypatch.setenv("CLASSLENS_REPORT_WRITER", "rules")
    monkeypatch.setenv("CLASSLENS_LOCAL_MODEL", str(tmp_path / "none"))
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=120)
    at.session_state["lecture_id"] = lid
    at.run()
    assert not at.exception, at.exception
    if name == "report":
        next(b for b in at.button if b.label == "Generate report").click().run()
        assert not at.exception, at.exception
        text = _page_text(at).split("What these signals can and cannot tell")[0]
        assert "Evidence:" in text
    else:
        text = _page_text(at)
        assert "Engagement" in text
    assert not EMOTION.search(text), EMOTION.findall(text)


def test_the_same_pages_show_emotions_when_measured(app_db):
    """Control: with emotions measured, the same text collection finds them (the check can fail)."""
    at = AppTest.from_file(str(ROOT / "pages" / "dashboard.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    assert {"happiness", "expressions"} <= {w.lower() for w in EMOTION.findall(_page_text(at))}
