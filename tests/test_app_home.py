"""AppTest of the analyse page: upload a real video, analyse, see the table and the downloads."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, fixture


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSLENS_DB", str(tmp_path / "app.duckdb"))
    return tmp_path / "app.duckdb"


def test_upload_analyse_and_download(app_db):
    at = AppTest.from_file(str(ROOT / "pages" / "analyse.py"), default_timeout=300)
    at.run()
    assert not at.exception
    at.file_uploader[0].set_value(("lecture.mp4", fixture("WolfgangLanger_Pexels.mp4").read_bytes(), "video/mp4"))
    at.run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("1 students" in s.value for s in at.success)
    df = at.dataframe[0].value
    assert len(df) == 1 and df["student"].tolist() == ["Student 1"]
    assert at.text_input[0].value.startswith("Student 1: ")
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download observations CSV", "Download students CSV"]
