"""core.charts: each figure draws the dashboard frames it is given; empty input gives a message."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from core import charts, dashboard


@pytest.fixture(scope="module")
def frames(analysed_db):
    store, result = analysed_db
    return dashboard.build(store, result.lecture_id), dashboard.student_frames(store, result.lecture_id, 1)


def test_lecture_figures(frames):
    f, _ = frames
    tl = charts.engagement_timeline(f.timeline)
    assert [t.name for t in tl.data][-1] == "class mean" and len(tl.data[-1].x) == len(f.timeline)
    emo = charts.emotion_distribution(f.emotions_over_time)
    assert {t.name for t in emo.data} == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    pos = charts.positive_index(f.positive)
    assert list(pos.data[0].y) == pytest.approx(f.positive["index"].tolist())
    perf = charts.performance_distribution(f.bands)
    assert sum(perf.data[0].y) == len(f.table)
    heat = charts.attention_heatmap(f.per_student_bin)
    assert heat.data[0].z.shape == (len(f.table), len(f.timeline))


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
        (charts.performance_distribution, dashboard.performance_bands(pd.Series(dtype=float))),
        (charts.attention_heatmap, pd.DataFrame(columns=["student", "t_start", "engagement"])),
    ],
)
def test_empty_input_gives_a_message_not_an_error(fn, empty):
    fig = fn(empty)
    assert isinstance(fig, go.Figure) and not fig.data and fig.layout.annotations
