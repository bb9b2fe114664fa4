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

# A head with no body (no shoulders) whose centre moved less than this fraction of its width over
# the whole lecture (at least `STATIC_MIN_SAMPLES` samples) is a picture (poster, screen, photo).
# Detector boxes of a still picture jitter by 1-2 px; a 34 px poster face moved 6%.
STATIC_MOVE = 0.1
STATIC_MIN_SAMPLES = 5
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
        rows: one row per present observation with columns student_id, the face box x1, y1, x2,
            y2 (NaN without a face), the student box sx1, sy1, sx2, sy2 and the body state
            head_down, head_turned, hand_raised, posture (all NULL when no shoulders showed).
        samples: sampled moments in the lecture.

    Returns:
        Pictures: a face seen in at least `STATIC_MIN_SAMPLES` samples that never moved (its
        centre within `STATIC_MOVE` of its width), with no body or a body that never moved
        either: posters, screens, photos (the pose model also "sees" a person in a portrait).
        A student whose face never shows (head down throughout) is never judged a picture. And
        detector noise: present in at most `NOISE_SHARE` of a lecture of at least
        `NOISE_MIN_SAMPLES` samples.
    """
    out = []
    body_cols = ["head_down", "head_turned", "hand_raised", "posture"]
    for sid, g in rows.groupby("student_id"):
        n = len(g)
        if samples >= NOISE_MIN_SAMPLES and n <= max(1, NOISE_SHARE * samples):
            out.append(int(sid))
            continue
        face = g[["x1", "y1", "x2", "y2"]]
        if face.notna().all(axis=1).sum() < STATIC_MIN_SAMPLES or not _static(face):
            continue
        no_body = not g[body_cols].notna().to_numpy().any()
        if no_body or _static(g[["sx1", "sy1", "sx2", "sy2"]]):
            out.append(int(sid))
    return sorted(out)


def _static(boxes: pd.DataFrame) -> bool:
    """True when the known boxes' centre stayed within `STATIC_MOVE` of their width."""
    b = boxes.to_numpy(dtype=float)
    b = b[np.isfinite(b).all(axis=1)]
    if len(b) < STATIC_MIN_SAMPLES:
        return False
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    width = float(np.median(b[:, 2] - b[:, 0]))
    return max(np.ptp(cx), np.ptp(cy)) < STATIC_MOVE * max(width, 1.0)
