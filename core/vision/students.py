"""Students in one frame: people from the pose model, faces placed in their head regions.

`StudentFinder.find` runs the pose model, drops duplicate people (two boxes about one head),
then looks for faces: the full-frame face detector's faces go to the student whose head region
holds them; for a student still without a face whose face keypoints show, the face detector looks
again in an upscaled crop of the head region (small back-row faces). A face that belongs to no
body becomes a student of its own (a student hidden behind a desk or another student); whether
it is a real student (and not a poster) is judged over the lecture (`core.vision.tracking`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from core.faces import FaceObservation
from core.track import iou_matrix
from core.vision.body import body_state, head_region
from core.vision.detect import grow_boxes
from core.vision.records import Box, StudentObservation
from models.yolo_pose import People

# A face detector's face belongs to a student when its centre is inside the head region grown by
# this factor about its centre.
HEAD_REACH = 1.3
# Look again for a face in the head crop when its face keypoints are this visible.
FACE_KEYPOINT_MIN = 0.6
# Head crops (the head region grown 1.4x) are resized to this side for the second look, so a
# 20 px back-row head becomes ~110 px.
CROP_PX = 160


# The pose model runs in this pool while the calling thread runs the face detector on the same
# frame: both release the GIL (onnxruntime, OpenCV, torch), so on two cores they overlap. Shared
# by every run of the process; each model serialises its own calls.
_POSE_POOL = ThreadPoolExecutor(2, thread_name_prefix="classlens-pose")


def face_student_box(face: Box, width: int, height: int) -> Box:
    """A head-and-shoulders box for a face seen without a body (for tracking)."""
    x1, y1, x2, y2 = face
    w, h = x2 - x1, y2 - y1
    return (
        max(0.0, x1 - 0.75 * w),
        max(0.0, y1 - 0.3 * h),
        min(float(width), x2 + 0.75 * w),
        min(float(height), y2 + 1.2 * h),
    )


def dedupe_people(people: People, heads: list[Box]) -> list[int]:
    """Indices of people to keep: of two people whose head regions overlap, the better scored."""
    if len(people) < 2:
        return list(range(len(people)))
    overlap = iou_matrix(np.array(heads, dtype=float), np.array(heads, dtype=float))
    keep: list[int] = []
    for i in np.argsort(-people.scores):
        if all(overlap[i, j] < 0.4 for j in keep):
            keep.append(int(i))
    return sorted(keep)


def assign_faces(heads: list[Box], faces: list[FaceObservation]) -> dict[int, int]:
    """Face index -> person index, nearest head region first, each person at most one face."""
    if not heads or not faces:
        return {}
    hb = np.array(heads, dtype=float)
    fc = np.array([((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in faces])
    hc = (hb[:, :2] + hb[:, 2:]) / 2
    size = np.maximum(hb[:, 2] - hb[:, 0], 1.0)
    dist = np.linalg.norm(fc[:, None, :] - hc[None, :, :], axis=2) / size[None, :]
    grown = grow_boxes(hb, HEAD_REACH)
    inside = (
        (fc[:, None, 0] >= grown[None, :, 0]) & (fc[:, None, 0] <= grown[None, :, 2])
        & (fc[:, None, 1] >= grown[None, :, 1]) & (fc[:, None, 1] <= grown[None, :, 3])
    )  # fmt: skip
    # A face much larger than the head region is someone else's (a person close to the camera).
    fw = np.array([f.width for f in faces])
    sane = fw[:, None] < 1.6 * size[None, :]
    cost = np.where(inside & sane, dist, np.inf)
    out: dict[int, int] = {}
    used: set[int] = set()
    for fi, pi in sorted(np.argwhere(np.isfinite(cost)), key=lambda ij: cost[ij[0], ij[1]]):
        if int(fi) in out or int(pi) in used:
            continue
        out[int(fi)] = int(pi)
        used.add(int(pi))
    return out


class StudentFinder:
    """People (pose model) + faces (face detector) -> untracked `StudentObservation`s.

    Args:
        pose_model: `models.yolo_pose.YoloPose` (or anything with `detect(rgb) -> People`).
        face_detector: a `core.vision.detect.FaceDetector`.
        second_look: look again for faces in upscaled head crops of students without one.
    """

    def __init__(self, pose_model: object, face_detector: object, second_look: bool = True) -> None:
        self.pose_model = pose_model
        self.face_detector = face_detector
        self.second_look = second_look

    def find(self, rgb: np.ndarray, frame_index: int, t: float) -> list[StudentObservation]:
        h, w = rgb.shape[:2]
        pending = _POSE_POOL.submit(self.pose_model.detect, rgb)  # type: ignore[attr-defined]
        faces = self.face_detector.detect(rgb, frame_index, t)  # type: ignore[attr-defined]
        people: People = pending.result()
        heads_all = [head_region(k, tuple(b)) for b, k in zip(people.boxes, people.keypoints, strict=True)]
        keep = dedupe_people(people, heads_all)
        boxes = [tuple(float(v) for v in people.boxes[i]) for i in keep]
        kpts = [people.keypoints[i] for i in keep]
        scores = [float(people.scores[i]) for i in keep]
        heads = [heads_all[i] for i in keep]
        owner = assign_faces(heads, faces)
        face_of: dict[int, FaceObservation] = {pi: faces[fi] for fi, pi in owner.items()}
        if self.second_look:
            for pi, (head, k) in enumerate(zip(heads, kpts, strict=True)):
                if pi not in face_of and float(np.max(k[:3, 2])) >= FACE_KEYPOINT_MIN:
                    found = self._look_in(rgb, head, frame_index, t)
                    if found is not None:
                        face_of[pi] = found
        students = []
        for pi, (box, k, score) in enumerate(zip(boxes, kpts, scores, strict=True)):
            head_down, turned, raised, posture = body_state(k)
            students.append(
                StudentObservation(
                    frame_index,
                    t,
                    box=box,
                    person_score=score,
                    keypoints=k,
                    face=face_of.get(pi),
                    head_down=head_down,
                    head_turned=turned,
                    hand_raised=raised,
                    posture=posture,
                )
            )
        for fi, face in enumerate(faces):
            if fi not in owner:
                students.append(StudentObservation(frame_index, t, box=face_student_box(face.box, w, h), face=face))
        return students

    def _look_in(self, rgb: np.ndarray, head: Box, frame_index: int, t: float) -> FaceObservation | None:
        """The best face in a square crop about `head`, resized to `CROP_PX`, in frame pixels.

        One crop size for every student keeps one face-detector instance (YuNet is built per
        input size).
        """
        import cv2

        h, w = rgb.shape[:2]
        gx1, gy1, gx2, gy2 = grow_boxes(np.array([head], dtype=float), 1.4)[0]
        side = max(gx2 - gx1, gy2 - gy1)
        if side < 6:
            return None
        cx, cy = (gx1 + gx2) / 2, (gy1 + gy2) / 2
        x1, y1 = round(cx - side / 2), round(cy - side / 2)
        s = round(side)
        # Black outside the frame: only the crop is padded, never a copy of the whole frame.
        crop = np.zeros((s, s, 3), dtype=rgb.dtype)
        ax1, ay1, ax2, ay2 = max(0, x1), max(0, y1), min(w, x1 + s), min(h, y1 + s)
        if ax2 > ax1 and ay2 > ay1:
            crop[ay1 - y1 : ay2 - y1, ax1 - x1 : ax2 - x1] = rgb[ay1:ay2, ax1:ax2]
        scale = CROP_PX / s
        crop = cv2.resize(crop, (CROP_PX, CROP_PX), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        found = self.face_detector.detect(np.ascontiguousarray(crop), frame_index, t)  # type: ignore[attr-defined]
        if not found:
            return None
        best = max(found, key=lambda f: f.det_score)
        bx = tuple(float(v) for v in np.asarray(best.box) / scale + np.array([x1, y1, x1, y1]))
        marks = None if best.landmarks is None else np.asarray(best.landmarks) / scale + np.array([x1, y1])
        return replace(best, box=bx, landmarks=marks)  # type: ignore[arg-type]
