"""The one frame analyser of ClassLens, used by the file pipeline and the live camera alike.

`locate` (sequential: each sample depends on the previous) finds the students and gives them
ids; `describe` (batchable, runs in the file pipeline's worker thread, in sample order) reads head
pose and eyes from the face mesh, then emotion and identity, for the visible faces. `analyse` does
both for one frame. The split balances the two cores: on the 20-face bench lecture, locate costs
~120 ms a sample (pose model beside the face detector) and describe ~105 ms (mesh 70, emotion 35).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.faces import FaceObservation
from core.vision.records import FrameResult, StudentObservation
from core.vision.students import StudentFinder
from core.vision.tracking import StudentTracker


def face_thumbnail(rgb: np.ndarray, box: tuple[float, float, float, float], side: int = 16) -> np.ndarray | None:
    """A contrast-normalised (side, side) gray thumbnail of a face (in memory only, never stored)."""
    import cv2

    h, w = rgb.shape[:2]
    x1, y1 = max(0, round(box[0])), max(0, round(box[1]))
    x2, y2 = min(w, round(box[2])), min(h, round(box[3]))
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    t = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (t - t.mean()) / (t.std() + 1e-3)


def _with_faces(result: FrameResult, faces: list[FaceObservation]) -> FrameResult:
    """`result` with its students' faces replaced by `faces` (matched by track id)."""
    by_id = {f.track_id: f for f in faces}
    students = [replace(s, face=by_id.get(s.track_id, s.face)) if s.face is not None else s for s in result.students]
    return replace(result, students=students)


class FrameAnalyser:
    """Per run (a lecture file or a camera session): students, ids, faces and their models.

    Args:
        models: loaded models (`core.pipeline.Models`).
        settings: tracker settings.
        state, next_id, known: tracker state to continue after a restart (see StudentTracker).
        identify: embed faces for identity when the models have an embedder (the live camera
            does not: names are matched on recorded lectures).
    """

    def __init__(  # type: ignore[no-untyped-def]
        self, models: object, settings: object, state=None, next_id: int = 1, known=None, identify: bool = True
    ) -> None:
        self.finder = StudentFinder(models.pose_model, models.detector, second_look=settings.second_look)  # type: ignore[attr-defined]
        self.tracker = StudentTracker(settings.track_iou, settings.track_max_gap_s, state, next_id, known)  # type: ignore[attr-defined]
        self.pose = None
        if models.pose_estimator is not None:  # type: ignore[attr-defined]
            from core.vision.face_pose import PoseAnalyser

            self.pose = PoseAnalyser(models.pose_estimator)  # type: ignore[attr-defined]
        self.describers = list(models.analysers)  # type: ignore[attr-defined]
        if identify and models.embedder is not None:  # type: ignore[attr-defined]
            from core.vision.lecture_identity import IdentityAnalyser

            self.describers.append(IdentityAnalyser(models.embedder))  # type: ignore[attr-defined]
        self._thumbs: dict[int, np.ndarray] = {}  # each student's latest face thumbnail

    def locate(self, rgb: np.ndarray, frame_index: int, t: float) -> FrameResult:
        """Students of one frame with ids, body state and face box."""
        found = self.finder.find(rgb, frame_index, t)
        students: list[StudentObservation] = [
            self._face_change(rgb, s) for s in self.tracker.update(found, frame_index, t)
        ]
        return FrameResult(frame_index, t, students)

    def _face_change(self, rgb: np.ndarray, student: StudentObservation) -> StudentObservation:
        """Set `face_change` against the student's previous face thumbnail (see StudentObservation)."""
        if student.face is None or student.track_id is None:
            return student
        thumb = face_thumbnail(rgb, student.face.box)
        if thumb is None:
            return student
        prev = self._thumbs.get(student.track_id)
        self._thumbs[student.track_id] = thumb
        if prev is None:
            return student
        return replace(student, face_change=float(np.abs(thumb - prev).mean()))

    def describe(self, batch: list[tuple[np.ndarray, FrameResult]]) -> list[FrameResult]:
        """Head pose and eyes, emotion and identity for the visible faces of several located frames
        (in sample order: pose is smoothed per student)."""
        pairs = [(rgb, r.faces) for rgb, r in batch]
        stages = ([self.pose] if self.pose is not None else []) + self.describers
        for stage in stages:
            outs = stage.analyse(pairs)
            pairs = [(rgb, faces) for (rgb, _), faces in zip(pairs, outs, strict=True)]
        return [_with_faces(r, faces) for (_, r), (_, faces) in zip(batch, pairs, strict=True)]

    def analyse(self, rgb: np.ndarray, frame_index: int, t: float) -> FrameResult:
        """`locate` then `describe` for one frame (the live camera's path)."""
        return self.describe([(rgb, self.locate(rgb, frame_index, t))])[0]
