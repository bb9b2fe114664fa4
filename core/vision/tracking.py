"""Student ids across samples, and the end-of-lecture judgement of what is not a student.

Students are tracked by their body boxes (which stay put in a classroom far better than faces
do, and are there when the face is hidden). A face seen without a body continues the student
whose last head region holds it, else it is tracked by its own head-and-shoulders box. Every
known student gets a row at every later sample: absent students with `present=False`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from core.track import IouTracker, TrackState
from core.vision.body import head_region
from core.vision.records import Box, StudentObservation

# A face whose median `face_change` over at least `STILL_MIN_CHANGES` comparisons is below this
# is a picture. Measured at 1 sample/s: a poster face 0.0 (0.38 when its box shifted a pixel row),
# live faces 0.10-1.0 per sample with medians 0.15-0.6 (classroom.gif, the Intel head-pose GIF of a
# man sitting still, WolfgangLanger_Pexels.mp4).
STILL_FACE = 0.08
STILL_MIN_CHANGES = 4
# In a lecture of at least `NOISE_MIN_SAMPLES` samples, a student present in at most this share of
# them (and at least once) is a detector mistake.
NOISE_SHARE = 0.02
NOISE_MIN_SAMPLES = 20


def _inside(point: tuple[float, float], box: Box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


class StudentTracker:
    """Sets `track_id` on the students of each frame and adds rows for absent students.

    Args:
        min_iou, max_gap_s: as for `core.track.IouTracker` (max_gap_s: a seat left empty longer
            than this is given to a new student).
        state: tracks to continue after a restart; `known`: every student id of the lecture so far.
        next_id: first id for new students.
    """

    def __init__(
        self,
        min_iou: float = 0.3,
        max_gap_s: float = 60.0,
        state: list[TrackState] | None = None,
        next_id: int = 1,
        known: set[int] | None = None,
    ) -> None:
        self.tracker = IouTracker(min_iou, max_gap_s, state, next_id)
        self.known: set[int] = set(known or ()) | {s.track_id for s in state or []}
        self._heads: dict[int, Box] = {s.track_id: head_region(None, s.box) for s in state or []}
        self._bodies: set[int] = {s.track_id for s in state or []}  # tracks whose box is a body

    def update(self, students: list[StudentObservation], frame_index: int, t: float) -> list[StudentObservation]:
        """Students of one frame -> the same with ids, followed by one absent row per missing student."""
        bodies = [i for i, s in enumerate(students) if s.has_body]
        faces_only = [i for i, s in enumerate(students) if not s.has_body]
        ids: dict[int, int] = {}
        body_boxes: list[Box] = [students[i].box for i in bodies]  # type: ignore[misc]
        for i, tid in zip(bodies, self.tracker.assign(body_boxes, t), strict=True):
            ids[i] = tid
        taken = set(ids.values())
        loose = []
        for i in faces_only:
            face = students[i].face
            assert face is not None
            centre = ((face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2)
            owner = next(
                (tid for tid, head in self._heads.items() if tid not in taken and _inside(centre, head)
                 and t - self.tracker.tracks[tid].last_t <= self.tracker.max_gap_s),
                None,
            )  # fmt: skip
            if owner is not None:
                ids[i] = owner
                taken.add(owner)
                old = self.tracker.tracks[owner]
                # A student tracked by body keeps the body box; a face-only one moves with its face.
                box = old.box if owner in self._bodies else students[i].box
                self.tracker.tracks[owner] = old.moved_to(box, t)  # type: ignore[arg-type]
            else:
                loose.append(i)
        loose_boxes: list[Box] = [students[i].box for i in loose]  # type: ignore[misc]
        for i, tid in zip(loose, self.tracker.assign(loose_boxes, t), strict=True):
            ids[i] = tid
        out = []
        for i, s in enumerate(students):
            tid = ids[i]
            face = None if s.face is None else replace(s.face, track_id=tid)
            out.append(replace(s, track_id=tid, face=face))
            if s.has_body:
                assert s.box is not None
                self._heads[tid] = head_region(s.keypoints, s.box)
                self._bodies.add(tid)
            elif tid not in self._bodies and face is not None:
                self._heads[tid] = face.box
        seen = set(ids.values())
        self.known |= seen
        out.extend(StudentObservation(frame_index, t, track_id=tid, present=False) for tid in sorted(self.known - seen))
        return out


def not_students(rows: pd.DataFrame, samples: int) -> list[int]:
    """Student ids that are not students, from a lecture's present rows.

    Args:
        rows: one row per present observation with columns student_id and face_change (NaN
            without a face or a previous one; see `StudentObservation.face_change`).
        samples: sampled moments in the lecture.

    Returns:
        Pictures: a face whose appearance did not change (median `face_change` below
        `STILL_FACE` over at least `STILL_MIN_CHANGES` comparisons): posters, photos, a frozen
        screen. Geometry cannot tell them apart (a person sitting still moves less than a
        detector's box jitters, and the pose model also "sees" a body in a portrait); pixels can.
        A student whose face never shows is never judged a picture. And detector noise: present
        in at most `NOISE_SHARE` of a lecture of at least `NOISE_MIN_SAMPLES` samples.
    """
    out = []
    for sid, g in rows.groupby("student_id"):
        n = len(g)
        if samples >= NOISE_MIN_SAMPLES and n <= max(1, NOISE_SHARE * samples):
            out.append(int(sid))
            continue
        change = g["face_change"].to_numpy(dtype=float, na_value=np.nan)
        change = change[np.isfinite(change)]
        if len(change) >= STILL_MIN_CHANGES and float(np.median(change)) < STILL_FACE:
            out.append(int(sid))
    return sorted(out)
