"""Roster end to end: enrol real people, recognise them in a real video, remove them."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from core import metrics, queries
from core.errors import ClassLensError
from core.pipeline import analyze
from core.report import build_facts, input_string
from core.roster import enrol, enrol_zip
from core.settings import Settings
from core.store import Store
from tests.conftest import ROOT, fixture

LIN = "identity/lin_manuel_miranda_1.jpg"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_enrolled_person_is_named_in_the_video_and_others_stay_anonymous(tmp_path, models):
    store = Store(tmp_path / "r.duckdb")
    enrol(store, "Lin-Manuel Miranda", [fixture(LIN)])
    result = analyze(fixture("short_hamilton_clip.mp4"), store, Settings(), models=models)
    studs = queries.students(store, result.lecture_id)
    named = studs[studs["identity"].notna()]
    assert named["student"].tolist() == ["Lin-Manuel Miranda"]
    # He is on screen for most of the clip (through scene cuts, one merged track).
    m = metrics.for_lecture(store, result.lecture_id).students.set_index("student")
    assert m.loc["Lin-Manuel Miranda", "present"] >= 4
    anon = studs[studs["identity"].isna()]["student"].tolist()
    assert anon and all(s.startswith("Student ") for s in anon)
    assert anon == [f"Student {i}" for i in range(1, len(anon) + 1)]
    entries = input_string(build_facts(store, result.lecture_id)).split(" | ")
    assert sum(e.startswith("Lin-Manuel Miranda: presence=") for e in entries) == 1
    # Anonymous students' embeddings are not kept once the lecture is finished.
    left = store.query_df("SELECT count(*) AS n FROM students WHERE embedding IS NOT NULL")
    assert left["n"][0] == 0


def test_without_roster_everyone_is_anonymous(tmp_path, models):
    store = Store(tmp_path / "r.duckdb")
    result = analyze(fixture("short_hamilton_clip.mp4"), store, Settings(), models=models)
    assert queries.students(store, result.lecture_id)["identity"].isna().all()


def test_cli_add_list_remove(tmp_path):
    db = str(tmp_path / "r.duckdb")
    add = _cli(
        "roster", "add", "Obama", str(fixture("identity/obama_1.jpg")), str(fixture("identity/obama_2.jpg")), "--db", db
    )
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout.splitlines()[-1]) == {"added": {"Obama": 2}}
    listed = json.loads(_cli("roster", "list", "--db", db).stdout.splitlines()[-1])
    assert listed == {"roster": [{"name": "Obama", "photos": 2}]}
    removed = _cli("roster", "remove", "Obama", "--db", db)
    assert json.loads(removed.stdout.splitlines()[-1]) == {"removed": "Obama", "embeddings": 2}
    assert Store(db).query_df("SELECT count(*) AS n FROM roster_embeddings")["n"][0] == 0
    again = _cli("roster", "remove", "Obama", "--db", db)
    assert again.returncode == 2 and "not on the roster" in again.stderr


def test_zip_enrols_each_folder(tmp_path):
    z = tmp_path / "class.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(fixture("identity/biden_1.jpg"), "Joe/1.jpg")
        zf.write(fixture("identity/biden_2.jpg"), "Joe/2.jpg")
        zf.write(fixture("identity/obama_1.jpg"), "Barack/a.jpg")
    store = Store(tmp_path / "r.duckdb")
    assert enrol_zip(store, z) == {"Barack": 1, "Joe": 2}
    assert set(store.roster()) == {"Barack", "Joe"}


def test_photo_without_face_and_too_many_photos_are_refused(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    import cv2
    import numpy as np

    blank = tmp_path / "wall.jpg"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 180, np.uint8))
    with pytest.raises(ClassLensError, match=r"wall\.jpg"):
        enrol(store, "Nobody", [blank])
    with pytest.raises(ClassLensError, match=r"at most 5"):
        enrol(
            store,
            "Obama",
            [fixture(f"identity/obama_{i}.jpg") for i in range(1, 6)] + [fixture("identity/obama_1.jpg")],
        )
    assert store.roster() == {}
