"""AppTest of Dashboard, Students, Settings & privacy, Roster and Live against a database filled by
the real pipeline from the fixture clip (tests/conftest.py `app_db`)."""

from __future__ import annotations

import time

import av
import pytest
import streamlit_webrtc
from streamlit.testing.v1 import AppTest

from core import privacy
from core.store import Store
from core.video import sample_frames
from tests.conftest import ROOT, fixture


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=120)


def test_dashboard_cards_charts_table_and_exports(app_db):
    at = page("dashboard").run()
    assert not at.exception, at.exception
    store = Store(app_db)
    sql = store.query_df(
        "SELECT (SELECT count(*) FROM students) AS n, avg(p_happy) AS h, avg(dominant_conf) AS c, avg(p_fear) AS a "
        "FROM observations"
    ).iloc[0]
    cards = {m.label: m.value for m in at.metric}
    assert cards["Students"] == str(int(sql["n"])) == "1"
    assert cards["Happiness"] == f"{sql['h']:.0%}"
    assert cards["Confidence"] == f"{sql['c']:.0%}"
    assert cards["Anxiety"] == f"{sql['a']:.0%}"
    assert cards["Presence"] == "100%" and cards["Engagement"].endswith("%")
    assert len(at.get("plotly_chart")) == 6
    table = at.dataframe[0].value
    assert len(table) == sql["n"] and table["student"].tolist() == ["Student 1"]
    assert table["time_present"].tolist() == ["0:20"]
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download observations CSV", "Download students CSV", "Download JSON"]
    assert at.text_area[0].value.startswith("Student 1: presence=1.00; engagement=")
    assert at.caption[0].value == "complete · 0:20 long · 1 moment a second · time bins of 1 s"
    assert at.sidebar.selectbox[0].value == int(store.list_lectures()["lecture_id"][0])


def test_dashboard_in_attention_only_mode_hides_emotions(app_db):
    privacy.save_preferences(app_db, privacy.Preferences(attention_only=True))
    at = page("dashboard").run()
    assert not at.exception
    assert [m.label for m in at.metric] == ["Students", "Presence", "Engagement"]
    assert len(at.get("plotly_chart")) == 4
    from core.faces import EMOTIONS

    columns = at.dataframe[0].value.columns
    assert not any(c.startswith(e) for c in columns for e in EMOTIONS)  # no emotion column
    assert {"head_down_share", "hand_raised_moments", "posture"} <= set(columns)  # body state stays


def test_dashboard_without_lectures(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSLENS_DB", str(tmp_path / "empty.duckdb"))
    at = page("dashboard").run()
    assert not at.exception and "No lecture" in at.info[0].value


def test_students_drilldown_with_thumbnails(app_db):
    store = Store(app_db)
    lid = int(store.list_lectures()["lecture_id"][0])
    privacy.save_preferences(app_db, privacy.Preferences(keep_thumbnails=True))
    moments = privacy.strongest_moments_all(store, lid)
    privacy.save_thumbnails(store, lid, fixture("WolfgangLanger_Pexels.mp4"), moments)
    at = page("students")
    at.session_state["lecture_id"] = lid
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox[0].value == 1
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Time in view (m:ss)"] == "0:20"  # 20 samples at 1 fps
    assert len(at.get("plotly_chart")) == 3
    assert len(at.get("image")) == len(moments)


def test_students_without_thumbnails_says_they_are_off(app_db):
    at = page("students").run()
    assert not at.exception
    assert not at.get("image")
    assert any("Thumbnails are off" in c.value for c in at.caption)


def test_settings_save_and_delete_everything(app_db):
    at = page("settings").run()
    assert not at.exception
    assert any("What ClassLens stores" in m.value for m in at.markdown)
    at.toggle[0].set_value(True)
    at.number_input[0].set_value(30)
    at.button[0].click().run()  # the form's submit button
    assert privacy.load_preferences(app_db) == privacy.Preferences(attention_only=True, retention_days=30)
    assert any("Settings saved" in s.value for s in at.success)
    at.text_input[0].set_value("DELETE").run()
    next(b for b in at.button if b.label == "Delete everything").click().run()
    assert Store(app_db).list_lectures().empty


def test_roster_enrol_confirm_add_or_replace_and_remove(app_db):
    at = page("roster").run()
    assert not at.exception and "Nobody is enrolled" in at.info[0].value
    photo = fixture("identity/lin_manuel_miranda_1.jpg").read_bytes()

    def enrol() -> None:
        at.text_input[0].set_value("Lin-Manuel Miranda")
        at.file_uploader[0].set_value(("lin.jpg", photo, "image/jpeg"))
        next(b for b in at.button if b.label == "Enrol").click().run()
        assert not at.exception, at.exception

    enrol()
    assert [s.value for s in at.success] == ["Enrolled Lin-Manuel Miranda: 1 photo on the roster now."]
    assert Store(app_db).roster_list()["photos"].tolist() == [1]
    assert at.dataframe[0].value["name"].tolist() == ["Lin-Manuel Miranda"]
    # The same name again: nothing is written until the teacher chooses.
    enrol()
    assert "on the roster already with 1 photo" in at.warning[0].value
    assert Store(app_db).roster_list()["photos"].tolist() == [1]
    next(b for b in at.button if b.label == "Replace their photos").click().run()
    assert [s.value for s in at.success] == ["Replaced the photos of Lin-Manuel Miranda: 1 photo on the roster now."]
    enrol()
    next(b for b in at.button if b.label == "Add the photos").click().run()
    assert Store(app_db).roster_list()["photos"].tolist() == [2]
    assert "2 photos on the roster now" in at.success[0].value
    next(b for b in at.button if b.label == "Remove from the roster").click().run()
    assert Store(app_db).roster_list().empty
    assert at.success[0].value == "Removed Lin-Manuel Miranda (2 photos) from the roster."


class FakeWebRtc:
    """Stands in for streamlit_webrtc.webrtc_streamer (AppTest cannot run the component): while
    'playing' it feeds real face frames into the page's frame callback."""

    def __init__(self, plays: int = 0) -> None:
        self.plays = plays
        self.kwargs: dict = {}
        self.frames = [f.rgb for f in sample_frames(fixture("WolfgangLanger_Pexels.mp4"), 4.0)][:24]
        self.state = self

    def __call__(self, **kwargs):
        self.kwargs = kwargs
        return self

    @property
    def playing(self) -> bool:
        if self.plays <= 0:
            return False
        self.plays -= 1
        callback = self.kwargs["video_frame_callback"]
        for rgb in self.frames[:6]:
            callback(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
            time.sleep(0.25)
        self.frames = self.frames[6:] + self.frames[:6]
        return True


@pytest.fixture
def fake_webrtc(monkeypatch):
    def make(plays: int) -> FakeWebRtc:
        fake = FakeWebRtc(plays)
        monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake)
        return fake

    return make


def test_live_page_idle_uses_no_ice_server(app_db, fake_webrtc):
    fake = fake_webrtc(0)
    at = page("live").run()
    assert not at.exception, at.exception
    assert fake.kwargs["rtc_configuration"] == {"iceServers": []}
    assert fake.kwargs["media_stream_constraints"]["audio"] is False
    assert "Camera off" in at.info[0].value


def test_live_page_records_a_live_lecture(app_db, fake_webrtc):
    fake_webrtc(4)
    at = page("live")
    for _ in range(5):  # 4 runs 'playing' (the fragment flushes each time), then STOP
        at.run()
        assert not at.exception, at.exception
    assert any("Saved Live camera" in s.value for s in at.success), [s.value for s in at.success]
    lectures = Store(app_db).list_lectures()
    live = lectures[lectures["source"] == "live"]
    assert len(live) == 1 and live["status"].tolist() == ["complete"] and live["students"].tolist() == [1]
    assert Store(app_db).count_observations(int(live["lecture_id"].iloc[0])) >= 2
