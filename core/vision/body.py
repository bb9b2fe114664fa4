"""Body state from the pose model's COCO keypoints: head region, head down, head turned, hand
raised, posture.

Rules (distances in units of the student's shoulder width `sw`, so they hold at any size; image y
grows downwards; a keypoint counts when its visibility is at least `VISIBLE`):
- head region: around the visible face keypoints (nose, eyes, ears), at least 0.6 sw wide; without
  them, above the shoulders; without shoulders, the top of the person box.
- head_down: the eyes (or nose) are less than `HEAD_DOWN_NECK` sw above the shoulder line, or the
  nose hangs more than `HEAD_DOWN_NOSE` sw below the ears (a head bent over a desk, seen from
  the front of the room); no face keypoints but ears and shoulders (the top of a bowed head) too.
- head_turned: the nose is off the ears' midpoint by more than `TURNED_RATIO` of the ear
  distance, or only one ear shows and the nose is off the shoulders' midpoint by more than
  `TURNED_RATIO` sw, or no eye and no nose shows while the shoulders do (back of the head).
- hand_raised: a wrist more than `RAISED_MARGIN` sw above its shoulder and either off to the side
  of the head (more than `RAISED_ASIDE` sw from the nose) or high above it (`RAISED_ASIDE` sw
  over the nose). A chin resting on a hand, or a hand at the mouth, keeps the wrist in front of
  the face, so it is not a raised hand.
- posture: "slumped" when the head sinks to less than `SLUMPED_NECK` sw above the shoulders,
  "leaning" when the shoulder line tilts more than `LEAN_DEG` degrees or the head is more than
  `LEAN_SHIFT` sw to the side of the shoulders' midpoint, else "upright".
"""

from __future__ import annotations

import math

import numpy as np

from core.vision.records import Box

VISIBLE = 0.5
HEAD_DOWN_NECK = 0.35
HEAD_DOWN_NOSE = 0.25
SLUMPED_NECK = 0.12
TURNED_RATIO = 0.3
LEAN_DEG = 12.0
LEAN_SHIFT = 0.35
RAISED_MARGIN = 0.15
RAISED_ASIDE = 0.5

NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SH, R_SH, L_ELB, R_ELB, L_WR, R_WR = range(11)


def _seen(k: np.ndarray, i: int) -> bool:
    return bool(k[i, 2] >= VISIBLE)


def _mean(k: np.ndarray, idx: tuple[int, ...]) -> np.ndarray | None:
    pts = [k[i, :2] for i in idx if _seen(k, i)]
    return np.mean(pts, axis=0) if pts else None


def shoulder_width(k: np.ndarray) -> float | None:
    """Distance between the shoulders in pixels, or None when either is not seen."""
    if not (_seen(k, L_SH) and _seen(k, R_SH)):
        return None
    return float(max(np.linalg.norm(k[L_SH, :2] - k[R_SH, :2]), 1.0))


def head_region(k: np.ndarray | None, box: Box) -> Box:
    """Where the student's face should be: a square about the head (pixels)."""
    x1, y1, x2, y2 = box
    bw = x2 - x1
    if k is not None:
        sw = shoulder_width(k)
        head = [k[i, :2] for i in range(5) if k[i, 2] >= 0.3]
        if len(head) >= 2:
            pts = np.array(head)
            c = pts.mean(axis=0)
            size = max(float(np.ptp(pts[:, 0])) * 1.8, 0.6 * sw if sw else 0.0, 0.25 * bw, 8.0)
            return (c[0] - size * 0.75, c[1] - size * 0.85, c[0] + size * 0.75, c[1] + size * 0.75)
        if sw is not None:
            mid = (k[L_SH, :2] + k[R_SH, :2]) / 2
            size = 0.8 * sw
            cy = mid[1] - 0.7 * sw
            return (mid[0] - size, cy - size, mid[0] + size, cy + size)
    side = min(bw * 0.6, y2 - y1)
    cx = (x1 + x2) / 2
    return (cx - side / 2, y1, cx + side / 2, y1 + side)


def body_state(k: np.ndarray | None) -> tuple[bool | None, bool | None, bool | None, str | None]:
    """(head_down, head_turned, hand_raised, posture) of one person's (17, 3) keypoints."""
    if k is None:
        return None, None, None, None
    sw = shoulder_width(k)
    if sw is None:
        return None, None, None, None
    mid = (k[L_SH, :2] + k[R_SH, :2]) / 2
    eyes = _mean(k, (L_EYE, R_EYE))
    nose = k[NOSE, :2] if _seen(k, NOSE) else None
    ears = _mean(k, (L_EAR, R_EAR))
    face_ref = eyes if eyes is not None else nose
    neck = None if face_ref is None else float((mid[1] - face_ref[1]) / sw)

    if face_ref is None:
        head_down = True if ears is not None else None
    else:
        nose_drop = None
        if nose is not None and ears is not None:
            nose_drop = float((nose[1] - ears[1]) / sw)
        head_down = bool(neck is not None and neck < HEAD_DOWN_NECK) or bool(
            nose_drop is not None and nose_drop > HEAD_DOWN_NOSE
        )

    if face_ref is None and (nose is None):
        head_turned = ears is None  # back of the head: shoulders but no face keypoint at all
    elif nose is not None and _seen(k, L_EAR) and _seen(k, R_EAR):
        ear_dist = max(abs(float(k[L_EAR, 0] - k[R_EAR, 0])), 1.0)
        head_turned = abs(float(nose[0] - (k[L_EAR, 0] + k[R_EAR, 0]) / 2)) / ear_dist > TURNED_RATIO
    elif nose is not None:
        head_turned = abs(float(nose[0] - mid[0])) / sw > TURNED_RATIO
    else:
        head_turned = None

    hand_raised = None
    if face_ref is not None:
        head_x, head_y = float(face_ref[0]), float(nose[1] if nose is not None else face_ref[1])
        hand_raised = False
        for wr, sh in ((L_WR, L_SH), (R_WR, R_SH)):
            if not _seen(k, wr) or k[wr, 1] > k[sh, 1] - RAISED_MARGIN * sw:
                continue
            aside = abs(float(k[wr, 0]) - head_x) > RAISED_ASIDE * sw
            high = float(k[wr, 1]) < head_y - RAISED_ASIDE * sw
            hand_raised = hand_raised or aside or high

    posture = None
    if neck is not None:
        tilt = abs(math.degrees(math.atan2(float(k[L_SH, 1] - k[R_SH, 1]), abs(float(k[L_SH, 0] - k[R_SH, 0])))))
        shift = abs(float(face_ref[0] - mid[0])) / sw if face_ref is not None else 0.0
        if neck < SLUMPED_NECK:
            posture = "slumped"
        elif tilt > LEAN_DEG or shift > LEAN_SHIFT:
            posture = "leaning"
        else:
            posture = "upright"
    return head_down, head_turned, hand_raised, posture
