"""Attention (concentration) score per observation, from what is visible.

Computed for every present student at every sample, in [0, 1]; NULL (None) when the student is
not present: "not visible" is its own state, never 0. Formula (also in the README):

    face visible:   attention = head · (0.5 + 0.5 · eyes) · (1 − 0.3 · fatigue) · (1 − 0.2 · distress)
    body only:      attention = body
    hand raised:    attention = 1

- head: 1 while the head points inside a cone of `cone_deg` (default 20°) around the lecture's
  "front" direction, falling linearly to 0 at `3 · cone_deg`. The front is calibrated per lecture
  as the median (yaw, pitch) of its visible faces — the class's own dominant head direction,
  since cameras sit in different places — unless set by hand. Unknown pose counts as 1. A face
  pitched below the front while the class is writing (see below) counts as 1.
- eyes: openness in [0, 1] (0 = closed); unknown counts as 1.
- fatigue: 1 during a long eye closure (eyes closed for at least `closure_s`, default 1.5 s, in
  consecutive samples of one student), else 0.
- distress: p_sad + p_fear from the emotion model; 0 in attention-only mode (no emotions), so the
  score works without emotion inference.
- body (no face visible, from the pose model's keypoints): head turned away `HEAD_TURNED_SCORE`
  (0.3); head down `HEAD_DOWN_ALONE_SCORE` (0.5) when alone, 1 while the class is writing; else 1.
- the class is writing at a moment when at least `CLASS_DOWN_SHARE` (half) of the present students
  whose head state is known have their head down: heads down with the class is not inattention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.metrics import EYES_CLOSED_BELOW  # one definition of eye closure, in core.metrics
from core.metrics import LONG_CLOSURE_S as CLOSURE_S

CONE_DEG = 20.0
HEAD_TURNED_SCORE = 0.3
HEAD_DOWN_ALONE_SCORE = 0.5
CLASS_DOWN_SHARE = 0.5


@dataclass(frozen=True)
class Front:
    """The direction counted as "towards the lecture", degrees."""

    yaw: float
    pitch: float
    learnt: bool  # True when calibrated from the class, False when set by hand


def calibrate_front(yaw: np.ndarray, pitch: np.ndarray) -> Front | None:
    """The class's dominant head direction: median yaw and pitch of all measured observations."""
    ok = np.isfinite(yaw) & np.isfinite(pitch)
    if not ok.any():
        return None
    return Front(float(np.median(yaw[ok])), float(np.median(pitch[ok])), learnt=True)


def head_term(yaw: np.ndarray, pitch: np.ndarray, front: Front | None, cone_deg: float = CONE_DEG) -> np.ndarray:
    """1 inside the cone around `front`, linear to 0 at 3x the cone; NaN pose -> 1."""
    if front is None:
        return np.ones_like(np.asarray(yaw, dtype=float))
    off = np.hypot(np.asarray(yaw, dtype=float) - front.yaw, np.asarray(pitch, dtype=float) - front.pitch)
    term = np.clip(1 - (off - cone_deg) / (2 * cone_deg), 0, 1)
    return np.where(np.isfinite(off), term, 1.0)


def fatigue_flags(
    student: np.ndarray, t: np.ndarray, eyes_open: np.ndarray, closure_s: float = CLOSURE_S
) -> np.ndarray:
    """1.0 for samples inside an eye closure of at least `closure_s` seconds (per student)."""
    flags = np.zeros(len(t))
    closed = np.nan_to_num(np.asarray(eyes_open, dtype=float), nan=1.0) < EYES_CLOSED_BELOW
    order = np.lexsort((t, student))
    start = None
    for k, i in enumerate(order):
        new_run = start is None or student[i] != student[order[start]] or not closed[i]
        if new_run and start is not None:
            _close_run(flags, order[start:k], t, closure_s)
            start = None
        if closed[i] and start is None:
            start = k
    if start is not None:
        _close_run(flags, order[start:], t, closure_s)
    return flags


def _close_run(flags: np.ndarray, idx: np.ndarray, t: np.ndarray, closure_s: float) -> None:
    if len(idx) and t[idx[-1]] - t[idx[0]] >= closure_s - 1e-9:
        flags[idx] = 1.0


def class_head_down_share(frame_index: np.ndarray, present: np.ndarray, head_down: np.ndarray) -> np.ndarray:
    """For each row, the share of present students with a known head state whose head is down in
    the same frame (NaN where nobody's head state is known)."""
    df = pd.DataFrame({"f": frame_index, "down": np.where(present, head_down, np.nan)})
    share = df.groupby("f")["down"].transform("mean")
    return share.to_numpy(dtype=float)


def attention_scores(obs: pd.DataFrame, front: Front | None) -> np.ndarray:
    """Attention for each row of `obs`: in [0, 1], NaN where the student is not present.

    Args:
        obs: columns student_id, frame_index, t, yaw, pitch, eyes_open; optional present,
            face_visible, head_down, head_turned, hand_raised (schema 4; missing or NULL = an
            older face row: present, face visible) and p_sad, p_fear when emotions were inferred.
        front: the lecture's front direction (None: head term 1).
    """
    n = len(obs)

    def col(name: str, default: float) -> np.ndarray:
        if name not in obs:
            return np.full(n, default)
        return obs[name].astype("Float64").to_numpy(dtype=float, na_value=np.nan)

    present = np.nan_to_num(col("present", 1.0), nan=1.0) > 0.5
    face = np.nan_to_num(col("face_visible", 1.0), nan=1.0) > 0.5
    head_down = col("head_down", np.nan)
    turned = col("head_turned", np.nan)
    raised = np.nan_to_num(col("hand_raised", 0.0), nan=0.0) > 0.5
    yaw, pitch = col("yaw", np.nan), col("pitch", np.nan)
    eyes = np.clip(col("eyes_open", np.nan), 0, 1)

    writing = class_head_down_share(obs["frame_index"].to_numpy(), present, head_down) >= CLASS_DOWN_SHARE
    head = head_term(yaw, pitch, front)
    if front is not None:
        looking_down = np.nan_to_num(pitch - front.pitch, nan=0.0) < -CONE_DEG  # pitch < 0: down
        head = np.where(writing & looking_down, 1.0, head)
    eyes_term = 0.5 + 0.5 * np.nan_to_num(eyes, nan=1.0)
    fatigue = fatigue_flags(obs["student_id"].to_numpy(), obs["t"].to_numpy(dtype=float), eyes)
    distress = np.nan_to_num(col("p_sad", np.nan) + col("p_fear", np.nan), nan=0.0)
    face_score = head * eyes_term * (1 - 0.3 * fatigue) * (1 - 0.2 * distress)

    body = np.ones(n)
    body = np.where(head_down == 1, np.where(writing, 1.0, HEAD_DOWN_ALONE_SCORE), body)
    body = np.where(turned == 1, HEAD_TURNED_SCORE, body)

    score = np.where(face, face_score, body)
    score = np.where(raised, 1.0, score)
    return np.where(present, np.clip(score, 0, 1), np.nan)
