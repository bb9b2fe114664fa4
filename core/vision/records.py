"""Typed per-frame data of the vision package: one `StudentObservation` per student and sample.

A student is a person found by the pose model (their body and head) or, where no body shows, a
face. The face, when visible, is a `core.faces.FaceObservation` inside the student record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.faces import FaceObservation

POSTURES: tuple[str, ...] = ("upright", "leaning", "slumped")
BODY_STATE: tuple[str, ...] = ("present", "face_visible", "head_down", "head_turned", "hand_raised", "posture")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class StudentObservation:
    """One student at one sampled moment.

    Attributes:
        frame_index: decoded frame index (0-based, display order).
        t: seconds from the start of the video.
        track_id: the student's id in this lecture (None before tracking).
        box: (x1, y1, x2, y2) pixels of the student (body, or head and shoulders for a face
            without a body); None when the student is not present.
        person_score: the pose model's person confidence; None for a face without a body.
        keypoints: (17, 3) COCO keypoints x, y (pixels) and visibility, or None.
        face: the student's face where one is visible, else None.
        present: False for a known student not found at this moment.
        head_down, head_turned, hand_raised: body state from the keypoints (None = cannot tell).
        posture: one of `POSTURES`, or None when shoulders and head are not both visible.
        face_change: how much the face's appearance changed since this student's previous
            face (mean absolute difference of contrast-normalised 16x16 gray thumbnails; 0 for
            identical pixels, 0.15-1 for a live face); None without a face or a previous one.
            Only this number is kept, never the thumbnail: a picture on the wall scores ~0.
        attention: score in [0, 1]; None when it cannot be judged (never 0 for "not seen").
    """

    frame_index: int
    t: float
    track_id: int | None = None
    box: Box | None = None
    person_score: float | None = None
    keypoints: np.ndarray | None = field(default=None, compare=False)
    face: FaceObservation | None = None
    present: bool = True
    head_down: bool | None = None
    head_turned: bool | None = None
    hand_raised: bool | None = None
    posture: str | None = None
    face_change: float | None = None
    attention: float | None = None

    @classmethod
    def from_face(cls, face: FaceObservation) -> StudentObservation:
        """A present student known only by this face (track id and time taken from it)."""
        return cls(face.frame_index, face.t, track_id=face.track_id, face=face, attention=face.attention)

    @property
    def face_visible(self) -> bool:
        return self.face is not None

    @property
    def has_body(self) -> bool:
        return self.person_score is not None


@dataclass(frozen=True)
class FrameResult:
    """Everything the analyser found in one sampled frame."""

    frame_index: int
    t: float
    students: list[StudentObservation]

    @property
    def faces(self) -> list[FaceObservation]:
        """The visible faces, each with its student's `track_id`."""
        return [s.face for s in self.students if s.face is not None]
