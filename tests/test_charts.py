"""core.charts: each figure draws the dashboard frames it is given; empty input gives a message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core import charts, dashboard, metrics


@pytest.fixture(scope="module")
def frames(analysed_db):
    store, result = analysed_db
    return dashboard.build(store, result.lecture_id), dashboard.student_frames(store, result.lecture_id, 1)


def test_lecture_figures(frames):
    f, _ = frames
    tl = charts.engagement_timeline(f.timeline)
    assert [t.name for t in tl.data][-1] == "class" and len(tl.data[-1].x) == len(f.timeline)
    assert tl.data[-1].connectgaps is False and tl.layout.xaxis.ticktext[:2] == ("0:00", "0:05")
    presence = charts.presence_timeline(f.per_student_bin)
    assert list(presence.data[0].y) == pytest.approx(f.per_student_bin.groupby("t_start")["presence"].sum().tolist())
    emo = charts.emotion_distribution(f.emotions_over_time)
    assert {t.name for t in emo.data} == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    pos = charts.positive_index(f.positive)
    assert list(pos.data[0].y) == pytest.approx(f.positive["index"].tolist())
    perf = charts.performance_distribution(f.bands)
    assert sum(perf.data[0].y) == len(f.table)
    heat = charts.attention_heatmap(f.per_student_bin)
    assert heat.data[0].z.shape == (len(f.table), len(f.timeline))
    assert [t.name for t in heat.data] == ["engagement", "not visible"]


def test_gaps_stay_gaps():
    """A bin without a reading is drawn as a gap (NaN), never as a line or area across it."""
    v = [0.5, np.nan, 0.7]
    tl = pd.DataFrame({"bin": [0, 1, 2], "t_start": [0.0, 1.0, 2.0], "mean": v, "p25": v, "p75": v, "min": v,
                       "max": v, "students": [1, 0, 1]})  # fmt: skip
    fig = charts.engagement_timeline(tl)
    assert np.isnan(fig.data[-1].y[1]) and fig.data[-1].connectgaps is False
    per = pd.DataFrame({"student_id": [1, 1, 1], "student": ["A", "A", "A"], "t_start": [0.0, 1.0, 2.0],
                        "engagement": [0.5, np.nan, 0.7], "presence": [1.0, 0.0, 1.0]})  # fmt: skip
    heat = charts.attention_heatmap(per)
    assert np.isnan(heat.data[0].z[0][1]) and heat.data[1].z[0][1] == 1.0  # grey "not visible" cell
    emo = pd.DataFrame({"t_start": [0.0, 1.0, 2.0], "emotion": ["happy"] * 3, "probability": [0.9, np.nan, 0.8]})
    line = next(t for t in charts.student_emotions(emo, "A").data if t.name == "happy")
    assert np.isnan(line.y[1]) and line.connectgaps is False


def test_student_figures(frames):
    _, s = frames
    assert len(charts.student_timeline(s.timeline, s.label).data[0].x) == len(s.timeline)
    assert len(charts.student_emotions(s.emotions, s.label).data) == 7
    assert list(charts.emotion_minutes(s.emotion_minutes, s.label).data[0].x) == s.emotion_minutes["emotion"].tolist()


@pytest.mark.parametrize(
    ("fn", "empty"),
    [
        (charts.engagement_timeline, pd.DataFrame(columns=["t_start", "mean"])),
        (charts.emotion_distribution, pd.DataFrame(columns=["t_start", "emotion", "share"])),
        (charts.positive_index, pd.DataFrame(columns=["t_start", "index"])),
        (charts.performance_distribution, metrics.performance_bands(pd.Series(dtype=float))),
        (charts.attention_heatmap, pd.DataFrame(columns=["student", "t_start", "engagement"])),
    ],
)
def test_empty_input_gives_a_message_not_an_error(fn, empty):
    fig = fn(empty)
    assert isinstance(fig, go.Figure) and not fig.data and fig.layout.annotations
