"""Attention (concentration) score per observation and per student-minute.

Formula (also in the README):

    attention = head · (0.5 + 0.5 · eyes) · (1 − 0.3 · fatigue) · (1 − 0.2 · distress)

- head: 1 while the head points inside a cone of `cone_deg` (default 20°) around the lecture's
  "front" direction, falling linearly to 0 at `3 · cone_deg`. The front is calibrated per lecture
  as the median (yaw, pitch) of all its observations — the class's own dominant head direction,
  since cameras sit in different places — unless set by hand. Unknown pose counts as 1.
- eyes: openness in [0, 1] (0 = closed); unknown counts as 1.
- fatigue: 1 during a long eye closure (eyes closed for at least `closure_s`, default 1.5 s, in
  consecutive samples of one student), else 0.
- distress: p_sad + p_fear from the emotion model; 0 in attention-only mode (no emotions), so the
  score works without emotion inference.

Per student per minute, samples where the face is absent count as 0 (face present is part of
attention): minute score = sum of the minute's attention / samples expected in that minute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CONE_DEG = 20.0
CLOSURE_S = 1.5
EYES_CLOSED_BELOW = 0.3


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


def attention_scores(obs: pd.DataFrame, front: Front | None) -> np.ndarray:
    """Attention in [0, 1] for each row of `obs` (columns student_id, t, yaw, pitch, eyes_open and,
    when emotions were inferred, p_sad, p_fear)."""
    yaw = obs["yaw"].to_numpy(dtype=float, na_value=np.nan)
    pitch = obs["pitch"].to_numpy(dtype=float, na_value=np.nan)
    eyes = np.clip(obs["eyes_open"].to_numpy(dtype=float, na_value=np.nan), 0, 1)
    head = head_term(yaw, pitch, front)
    eyes_term = 0.5 + 0.5 * np.nan_to_num(eyes, nan=1.0)
    fatigue = fatigue_flags(obs["student_id"].to_numpy(), obs["t"].to_numpy(dtype=float), eyes)
    if "p_sad" in obs and "p_fear" in obs:
        distress = np.nan_to_num(
            obs["p_sad"].to_numpy(dtype=float, na_value=np.nan) + obs["p_fear"].to_numpy(dtype=float, na_value=np.nan),
            nan=0.0,
        )
    else:
        distress = np.zeros(len(obs))
    return np.clip(head * eyes_term * (1 - 0.3 * fatigue) * (1 - 0.2 * distress), 0, 1)
