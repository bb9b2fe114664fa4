"""AppTest of the Home page: background analysis with progress and cancel, sample, past lectures."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from app.resources import job_registry
from core.store import Store
from tests.conftest import ROOT, fixture

HOME = str(ROOT / "pages" / "home.py")


def wait_for_jobs(timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while job_registry().active() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not job_registry().active(), "analysis did not finish"


@pytest.fixture
def fresh_db(tmp_path, app_db, monkeypatch):
    path = tmp_path / "fresh.duckdb"
    monkeypatch.setenv("CLASSLENS_DB", str(path))
    return path


def test_past_lectures_and_the_sample_lecture(app_db):
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert not at.exception
    assert "up to 2048 MB" in at.file_uploader[0].label
    assert any("WolfgangLanger_Pexels.mp4" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "Try the sample lecture").click().run()
    wait_for_jobs()
    at.run()
    assert not at.exception
    # the sample is the fixture clip, already analysed with the same settings: reused at once
    assert any("already analysed" in s.value and "1 student," in s.value for s in at.success)
    assert any(b.label == "Open its dashboard" for b in at.button)


def test_upload_analyses_in_the_background_then_cancel(fresh_db):
    at = AppTest.from_file(HOME, default_timeout=60).run()
    at.file_uploader[0].set_value(("clip.mov", fixture("face_noface.mov").read_bytes(), "video/quicktime")).run()
    next(b for b in at.button if b.label == "Analyse").click().run()
    assert not at.exception
    assert at.get("progress"), "a progress bar while the analysis runs"
    assert "elapsed" in at.get("progress")[0].proto.text
    wait_for_jobs()
    at.run()
    assert any("Analysed clip.mov: 1 student," in s.value for s in at.success), [s.value for s in at.success]
    lectures = Store(fresh_db).list_lectures()
    assert lectures["file_name"].tolist() == ["clip.mov"] and lectures["status"].tolist() == ["complete"]

    # a longer clip, cancelled: stops after the first committed batch and says so
    at.file_uploader[0].set_value(("long.mp4", fixture("WolfgangLanger_Pexels.mp4").read_bytes(), "video/mp4")).run()
    next(b for b in at.button if b.label == "Analyse").click().run()
    next(b for b in at.button if b.label == "Cancel").click().run()
    wait_for_jobs()
    at.run()
    assert any("long.mp4: stopped" in i.value for i in at.info)
    status = Store(fresh_db).query_df("SELECT status FROM lectures WHERE file_name = 'long.mp4'")["status"].tolist()
    assert status == ["interrupted"]


def test_delete_a_past_lecture(app_db):
    at = AppTest.from_file(HOME, default_timeout=60).run()
    lid = int(Store(app_db).list_lectures()["lecture_id"][0])
    at.button(key=f"delete-{lid}").click().run()
    assert not at.exception
    assert Store(app_db).list_lectures().empty
    assert any("No lectures yet" in i.value for i in at.info)


def test_a_bad_file_shows_a_message_not_a_traceback(fresh_db):
    at = AppTest.from_file(HOME, default_timeout=60).run()
    at.file_uploader[0].set_value(("notes.mp4", b"this is not a video", "video/mp4")).run()
    next(b for b in at.button if b.label == "Analyse").click().run()
    wait_for_jobs()
    at.run()
    assert not at.exception
    assert at.error and "notes.mp4" in at.error[0].value


def test_the_navigation_frame_opens_home_and_purges_expired_lectures(app_db):
    from datetime import datetime, timedelta

    from core import privacy

    store = Store(app_db)
    with store.transaction() as con:
        con.execute("UPDATE lectures SET created_at = ?", [datetime.now() - timedelta(days=10)])
    privacy.save_preferences(app_db, privacy.Preferences(retention_days=7))
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "ClassLens"
    assert store.list_lectures().empty  # older than the 7-day retention: deleted on start


def test_reanalyse_a_past_lecture_with_the_roster(fresh_db, models):
    """After enrolling someone, a past lecture is analysed again from the same file and names them."""
    from core.pipeline import analyze
    from core.roster import enrol
    from core.settings import Settings

    store = Store(fresh_db)
    clip = fixture("short_hamilton_clip.mp4")
    old = analyze(clip, store, Settings(), models=models, display_name="hamilton.mp4")
    enrol(store, "Lin-Manuel Miranda", [fixture("identity/lin_manuel_miranda_1.jpg")])
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert not at.exception, at.exception
    at.file_uploader(key=f"redo-file-{old.lecture_id}").set_value(("other.mp4", b"not the same", "video/mp4")).run()
    at.button(key=f"redo-{old.lecture_id}").click().run()
    assert any("other.mp4 is not the same file as hamilton.mp4" in e.value for e in at.error)
    at.file_uploader(key=f"redo-file-{old.lecture_id}").set_value(("h.mp4", clip.read_bytes(), "video/mp4")).run()
    at.button(key=f"redo-{old.lecture_id}").click().run()
    wait_for_jobs()
    at.run()
    assert not at.exception, at.exception
    lectures = store.list_lectures()
    assert lectures["file_name"].tolist() == ["hamilton.mp4"] and old.lecture_id not in lectures["lecture_id"].tolist()
    labels = store.query_df("SELECT label FROM students WHERE lecture_id = ?", [int(lectures["lecture_id"][0])])
    assert "Lin-Manuel Miranda" in labels["label"].tolist()
    assert any("Analysed hamilton.mp4:" in s.value for s in at.success)
