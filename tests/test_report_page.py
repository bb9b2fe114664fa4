"""AppTest of the report page: generate, edit the input string, regenerate, download, past reports."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from tests.test_report import tiny_model_dir  # noqa: F401 (fixture)


@pytest.fixture
def page_env(analysed_db, tiny_model_dir, monkeypatch):  # noqa: F811
    store, result = analysed_db
    monkeypatch.setenv("CLASSLENS_DB", str(store.path))
    monkeypatch.setenv("CLASSLENS_LOCAL_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("CLASSLENS_REPORT_WRITER", "rules")
    return result.lecture_id


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_generate_edit_regenerate_download(page_env):
    at = AppTest.from_file(str(ROOT / "pages" / "report.py"), default_timeout=120)
    at.session_state["lecture_id"] = page_env
    at.run()
    assert not at.exception, at.exception
    assert at.radio[0].value == "rules" and len(at.radio[0].options) == 2  # no endpoint configured
    assert at.text_area[0].value.startswith("Student 1: presence=1.00; engagement=")

    _button(at, "Generate report").click().run()
    assert not at.exception, at.exception
    text = "\n".join(m.value for m in at.markdown)
    assert "Evidence:" in text and "0:20 long" in text
    assert "Break suggestion" not in text  # a 20-second clip
    labels = [b.label for b in at.get("download_button")]
    assert "Download .txt" in labels and "Download .md" in labels

    at.text_area[0].input("Ada: attention=0.40; sad=0.70 (3.00min) | Student 2: attention=0.90")
    _button(at, "Generate report").click().run()
    assert not at.exception, at.exception
    assert "## For Ada" in "\n".join(m.value for m in at.markdown)

    _button(at, "Regenerate").click().run()
    assert not at.exception, at.exception
    assert "Download .txt" in [b.label for b in at.get("download_button")]
    assert any("Past reports" in e.label for e in at.expander)

    at.text_area[0].input("Ada happy")
    _button(at, "Generate report").click().run()
    assert any("Could not read" in e.value for e in at.error)


def test_local_writer_in_page_streams_and_is_checked(page_env):
    at = AppTest.from_file(str(ROOT / "pages" / "report.py"), default_timeout=120)
    at.session_state["lecture_id"] = page_env
    at.run()
    at.radio[0].set_value("local").run()
    _button(at, "Generate report").click().run()
    assert not at.exception, at.exception
    assert "Written by tiny-lm" in " ".join(c.value for c in at.caption)
    assert "first words after" in " ".join(c.value for c in at.caption)
    assert "Download .txt" in [b.label for b in at.get("download_button")]
