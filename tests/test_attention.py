"""core.attention: the documented formula, table-driven."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.attention import Front, attention_scores, calibrate_front, fatigue_flags, head_term

FRONT = Front(10.0, -5.0, learnt=True)


@pytest.mark.parametrize(
    ("yaw", "pitch", "expected"),
    [
        (10.0, -5.0, 1.0),  # looking at the front
        (25.0, -5.0, 1.0),  # inside the 20° cone
        (50.0, -5.0, 0.5),  # 40° off: half way to 60°
        (80.0, -5.0, 0.0),  # turned away
        (10.0, 55.0, 0.0),  # looking far up
        (np.nan, np.nan, 1.0),  # pose unknown: no penalty
    ],
)
def test_head_term(yaw, pitch, expected):
    assert head_term(np.array([yaw]), np.array([pitch]), FRONT)[0] == pytest.approx(expected)


def test_front_is_the_median_direction_of_the_class():
    yaw = np.array([30.0, 32.0, 28.0, -60.0, np.nan])
    pitch = np.array([0.0, 2.0, -2.0, 0.0, 5.0])
    front = calibrate_front(yaw, pitch)
    assert front is not None and front.learnt
    assert front.yaw == pytest.approx(29.0) and front.pitch == pytest.approx(0.0)
    assert calibrate_front(np.array([np.nan]), np.array([np.nan])) is None


def test_long_eye_closure_is_fatigue_short_blink_is_not():
    t = np.arange(10) * 0.5
    student = np.ones(10, dtype=int)
    eyes = np.array([1, 0.1, 1, 1, 0.1, 0.1, 0.1, 0.1, 1, 1])  # a blink, then 1.5 s closed
    flags = fatigue_flags(student, t, eyes)
    assert flags.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]


def test_attention_falls_when_turned_away_or_eyes_closed_and_works_without_emotions():
    obs = pd.DataFrame(
        {
            "student_id": [1, 1, 2, 3],
            "t": [0.0, 0.5, 0.0, 0.0],
            "yaw": [10.0, 10.0, 80.0, 10.0],
            "pitch": [-5.0, -5.0, -5.0, -5.0],
            "eyes_open": [1.0, 1.0, 1.0, 0.0],
        }
    )
    att = attention_scores(obs, FRONT)
    assert att[0] == pytest.approx(1.0)
    assert att[2] == pytest.approx(0.0)  # turned away
    assert att[3] == pytest.approx(0.5)  # eyes closed (short): half
    with_emotion = obs.assign(p_sad=[0.0, 1.0, 0.0, 0.0], p_fear=[0.0, 0.0, 0.0, 0.0])
    assert attention_scores(with_emotion, FRONT)[1] == pytest.approx(0.8)
