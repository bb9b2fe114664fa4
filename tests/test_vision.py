"""core.vision: students (not faces) on real media: group photos, a classroom clip with a hidden
face and a poster, raised hands and a lowered head on real photos, and the body-state rules."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from core.pipeline import analyze
from core.settings import Settings
from core.store import Store
from core.vision.body import body_state, head_region
from core.vision.students import StudentFinder
from tests.conftest import fixture


def rgb_of(name: str, frame: int = 0) -> np.ndarray:
    im = Image.open(fixture(name))
    im.seek(frame)
    return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def finder(models):
    return StudentFinder(models.pose_model, models.detector)


def near(student, x: float, y: float, reach: float) -> bool:
    x1, y1, x2, y2 = student.box
    return x1 - reach <= x <= x2 + reach and y1 - reach <= y <= y2 + reach


@pytest.mark.parametrize(("name", "people"), [("t1.jpg", 6), ("multi_face.jpg", 5)])
def test_every_person_of_a_group_photo_is_a_student_with_a_body_and_a_face(finder, name, people):
    students = finder.find(rgb_of(name), 0, 0.0)
    assert len(students) == people
    assert all(s.has_body and s.face_visible and s.present for s in students)


def test_raised_hands_are_seen_and_hands_at_rest_are_not(finder):
    # Two men each raise a hand (heads at about (432, 250) and (615, 235); see body/SOURCE.md).
    students = finder.find(rgb_of("body/raised_hands_pair.jpg"), 0, 0.0)
    raised = [s for s in students if s.hand_raised]
    assert len(raised) == 2
    assert {min(((432, 250), (615, 235)), key=lambda p: abs(p[0] - (s.box[0] + s.box[2]) / 2))[0] for s in raised} == {
        432,
        615,
    }
    for name in ("t1.jpg", "multi_face.jpg"):
        assert not any(s.hand_raised for s in finder.find(rgb_of(name), 0, 0.0))


def test_a_lowered_head_is_head_down(finder):
    """classroom.gif: the student on the right (head ~(317, 161)) looks up at frame 0 and down at
    his hands at frame 44; the three others keep looking ahead."""
    up = [s for s in finder.find(rgb_of("classroom.gif", 0), 0, 0.0) if near(s, 317, 161, 0)]
    down = [s for s in finder.find(rgb_of("classroom.gif", 44), 44, 2.9) if near(s, 317, 161, 0)]
    assert len(up) == len(down) == 1
    assert up[0].head_down is False and down[0].head_down is True
    others = [s for s in finder.find(rgb_of("classroom.gif", 44), 44, 2.9) if not near(s, 317, 161, 0)]
    assert len(others) == 3 and not any(s.head_down for s in others)


@pytest.fixture(scope="module")
def classroom_clip(tmp_path_factory):
    """A 9 s H.264 clip of classroom.gif played forward and back, with (a) the right-hand student's
    face covered by a patch of the desk from the same frame for t in [3, 6) s, and (b) a real face
    photo pasted static on the wall (a poster)."""
    gif = Image.open(fixture("classroom.gif"))
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB")).copy())
    frames = (frames + frames[::-1]) * 2 + frames[:15]  # 195 frames, 13 s at 15 fps
    frames = frames[:135]  # 9 s
    poster = np.asarray(Image.open(fixture("0-f15-hao-ph.jpg")).convert("RGB").resize((48, 48)))
    path = tmp_path_factory.mktemp("clip") / "classroom_poster_hidden.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 480, 270, "yuv420p"
        for k, rgb in enumerate(frames):
            rgb = rgb.copy()
            rgb[30:78, 20:68] = poster  # on the wall, left of the door
            if 45 <= k < 90:
                rgb[140:182, 298:336] = rgb[232 : 274 - 0, 180:218][:42, :38] if False else rgb[228:270, 180:218]
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def classroom_rows(classroom_clip, models, tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("db") / "c.duckdb")
    result = analyze(classroom_clip, store, Settings(identify=False), models=models)
    rows = store.query_df(
        "SELECT student_id, t, present, face_visible, sx1, sy1, sx2, sy2, x1, y1, x2, y2, attention "
        "FROM observations WHERE lecture_id = ? ORDER BY t, student_id",
        [result.lecture_id],
    )
    return result, rows


def test_the_poster_is_not_a_student(classroom_rows):
    result, rows = classroom_rows
    assert result.status == "complete" and result.students == 4
    on_wall = rows[(rows["sx1"] < 70) & (rows["sy2"] < 110)]
    assert on_wall.empty


def test_a_hidden_face_keeps_its_student_id(classroom_rows):
    _, rows = classroom_rows
    right = rows[(rows["sx1"] < 317) & (rows["sx2"] > 317) & (rows["sy1"] < 161) & (rows["sy2"] > 161)]
    assert right["student_id"].nunique() == 1
    sid = right["student_id"].iloc[0]
    mine = rows[rows["student_id"] == sid]
    assert len(mine) == 9 and mine["present"].all()
    hidden = mine[(mine["t"] >= 3) & (mine["t"] < 6)]
    assert len(hidden) == 3 and not hidden["face_visible"].any()
    assert hidden["x1"].isna().all() and hidden["attention"].notna().all()  # judged from the body
    # Before and after, his face shows (he looks down at his hands at times: a borderline face).
    assert mine[mine["t"] < 3]["face_visible"].sum() >= 2 and mine[mine["t"] >= 6]["face_visible"].sum() >= 2


# -- the rules, on keypoints -------------------------------------------------------------------


def kp(**points: tuple[float, float]) -> np.ndarray:
    """(17, 3) keypoints with the named ones visible."""
    from models.yolo_pose import KEYPOINTS

    k = np.zeros((17, 3), np.float32)
    for name, (x, y) in points.items():
        k[KEYPOINTS.index(name)] = (x, y, 0.95)
    return k


UPRIGHT = dict(
    nose=(100, 60), left_eye=(108, 52), right_eye=(92, 52), left_ear=(118, 56), right_ear=(82, 56),
    left_shoulder=(140, 120), right_shoulder=(60, 120),
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, (False, False, False, "upright")),
        ({"left_wrist": (170, 40)}, (False, False, True, "upright")),  # hand up beside the head
        ({"left_wrist": (104, 80)}, (False, False, False, "upright")),  # chin on the hand
        ({"nose": (100, 118), "left_eye": (108, 114), "right_eye": (92, 114)}, (True, False, False, "slumped")),
        ({"nose": (100, 92), "left_eye": (108, 88), "right_eye": (92, 88)}, (True, False, False, "upright")),
        ({"nose": (117, 60)}, (False, True, False, "upright")),  # nose towards one ear
        ({"left_shoulder": (140, 100)}, (False, False, False, "leaning")),  # shoulders tilted 14 deg
    ],
)
def test_body_state_rules(change, expected):
    assert body_state(kp(**{**UPRIGHT, **change})) == expected


def test_no_shoulders_no_body_state_and_head_region_falls_back_to_the_box():
    k = kp(nose=(100, 60))
    assert body_state(k) == (None, None, None, None)
    assert head_region(None, (0, 0, 100, 300)) == (20.0, 0, 80.0, 60.0)


def test_not_students_are_still_pictures_and_one_off_detections():
    import pandas as pd

    from core.vision.tracking import not_students

    def rows(sid, changes):
        return pd.DataFrame({"student_id": sid, "face_change": changes})

    table = pd.concat(
        [
            rows(1, [np.nan] + [0.12, 0.2, 0.15, 0.3, 0.11] * 6),  # a live face, sitting still
            rows(2, [np.nan] + [0.0, 0.0, 0.38, 0.0, 0.0] * 6),  # a poster (box shifted a pixel once)
            rows(3, [np.nan] * 31),  # head down all lecture: never a picture
            rows(4, [np.nan]),  # seen once in 31 samples
        ]
    )
    assert not_students(table, samples=31) == [2, 4]
    assert not_students(table[table["student_id"] == 2].head(4), samples=4) == []  # too short to tell
