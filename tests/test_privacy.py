"""core.privacy: preferences round trip, retention purge, delete everything, blurred thumbnails."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta

import cv2
import numpy as np
import pytest

from core import privacy
from core.privacy import Preferences
from core.store import Store
from tests.conftest import fixture


def test_preferences_default_and_round_trip(tmp_path):
    db = tmp_path / "c.duckdb"
    assert privacy.load_preferences(db) == Preferences()
    assert Preferences().keep_thumbnails is False  # opt-in
    assert Preferences().rtc_configuration() == {"iceServers": []}
    prefs = Preferences(attention_only=True, keep_thumbnails=True, retention_days=30, ice_servers=("stun:x:3478",))
    path = privacy.save_preferences(db, prefs)
    assert path == tmp_path / "c.settings.json"
    assert privacy.load_preferences(db) == prefs
    assert prefs.rtc_configuration() == {"iceServers": [{"urls": ["stun:x:3478"]}]}


@pytest.mark.parametrize("text", ["not json", '{"retention_days": -5, "unknown": 1}'])
def test_bad_or_odd_preferences_file(tmp_path, text):
    db = tmp_path / "c.duckdb"
    privacy.preferences_path(db).write_text(text)
    assert privacy.load_preferences(db).retention_days == 0


@pytest.fixture
def two_lectures(tmp_path, analysed_db):
    store, _ = analysed_db
    shutil.copy(store.path, tmp_path / "c.duckdb")
    store = Store(tmp_path / "c.duckdb")
    new = store.create_lecture("new.mp4", None, settings_key="{}", sample_fps=2.0, status="complete")
    old = int(store.query_df("SELECT min(lecture_id) AS i FROM lectures")["i"][0])
    with store.transaction() as con:
        con.execute(
            "UPDATE lectures SET created_at = ? WHERE lecture_id = ?", [datetime.now() - timedelta(days=40), old]
        )
    return store, old, new


def test_purge_deletes_only_lectures_past_retention(two_lectures):
    store, old, new = two_lectures
    assert privacy.purge_expired(store, 0) == []
    assert privacy.purge_expired(store, 60) == []
    assert privacy.purge_expired(store, 30) == [old]
    assert store.list_lectures()["lecture_id"].tolist() == [new]
    assert store.count_observations(old) == 0 and store.count_students(old) == 0


def test_delete_everything(two_lectures):
    store, old, _ = two_lectures
    store.roster_add("Ada", np.ones((1, 512), dtype=np.float32))
    privacy.thumbnails_dir(store.path, old).mkdir(parents=True)
    assert privacy.delete_everything(store) == 2
    assert store.list_lectures().empty and store.roster_list().empty
    assert not privacy.thumbnails_dir(store.path).exists()


def test_thumbnails_are_blurred_crops_of_the_strongest_moments(two_lectures):
    store, old, _ = two_lectures
    moments = privacy.strongest_moments_all(store, old)
    assert 1 <= len(moments) <= 4
    paths = privacy.save_thumbnails(store, old, fixture("WolfgangLanger_Pexels.mp4"), moments)
    assert len(paths) == len(moments)
    thumbs = privacy.student_thumbnails(store.path, old, 1)
    assert set(thumbs) == set(moments["frame_index"].astype(int))
    img = cv2.imread(str(paths[0]))
    assert img.shape == (112, 112, 3)
    privacy.delete_lecture(store, old)
    assert not privacy.thumbnails_dir(store.path, old).exists()


def test_blur_removes_detail():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    crop = privacy.blur_face(rgb, (50, 50, 150, 150))
    sharp = cv2.resize(rgb[40:160, 40:160], (112, 112), interpolation=cv2.INTER_AREA)
    assert crop.shape == (112, 112, 3) and crop.std() < sharp.std() / 3
    frame = privacy.blur_frame(rgb, [(50, 50, 150, 150)])
    assert frame[50:150, 50:150].std() < rgb[50:150, 50:150].std() / 3
    assert np.array_equal(frame[:40], rgb[:40])  # outside the faces untouched
