"""Plotly figures for the dashboard, the student drilldown and the live page (DataFrame -> Figure).

Pure functions: no database, no Streamlit. Inputs are the frames of `core.dashboard`.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core.faces import EMOTIONS

EMOTION_COLOURS: dict[str, str] = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#f2b701",
    "sad": "#1f77b4",
    "surprise": "#17becf",
    "neutral": "#9e9e9e",
}
ACCENT = "#3b6fd8"
_LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    "height": 340,
    "template": "plotly_white",
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
}


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **_LAYOUT)
    return fig


def engagement_timeline(timeline: pd.DataFrame, title: str = "Class engagement over time") -> go.Figure:
    """Class mean engagement per time bin with its interquartile band and min–max range.

    Args:
        timeline: `core.dashboard.class_timeline` output (t_start seconds; values in [0, 1]).
    """
    if timeline.empty:
        return _empty(title, "No observations yet")
    t = timeline["t_start"]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=t, y=timeline["max"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip")
    )
    fig.add_trace(
        go.Scatter(
            x=t, y=timeline["min"], mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor="rgba(59,111,216,0.10)", name="min–max",
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=t, y=timeline["p75"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip")
    )
    fig.add_trace(
        go.Scatter(
            x=t, y=timeline["p25"], mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor="rgba(59,111,216,0.25)", name="middle half of students",
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=t, y=timeline["mean"], mode="lines+markers", line={"color": ACCENT, "width": 2}, name="class mean")
    )
    fig.update_layout(
        title=title,
        xaxis_title="time (s)",
        yaxis={"title": "engagement", "range": [0, 1.02], "tickformat": ".0%"},
        **_LAYOUT,
    )
    return fig


def emotion_distribution(shares: pd.DataFrame, title: str = "Emotions over time") -> go.Figure:
    """Stacked area of the share of each dominant emotion per time bin (`dashboard.emotions_over_time`)."""
    if shares.empty:
        return _empty(title, "No emotions (attention-only mode or no faces)")
    fig = go.Figure()
    for e in EMOTIONS:
        sub = shares[shares["emotion"] == e]
        fig.add_trace(
            go.Scatter(
                x=sub["t_start"], y=sub["share"], name=e, mode="lines", stackgroup="one",
                line={"width": 0.5, "color": EMOTION_COLOURS[e]},
            )
        )  # fmt: skip
    fig.update_layout(
        title=title,
        xaxis_title="time (s)",
        yaxis={"title": "share of faces", "range": [0, 1], "tickformat": ".0%"},
        **_LAYOUT,
    )
    return fig


def positive_index(index: pd.DataFrame, title: str = "Positive-emotion index") -> go.Figure:
    """Bars of the per-bin positive-emotion index in [−1, 1] (`dashboard.positive_index`)."""
    if index.empty:
        return _empty(title, "No emotions (attention-only mode or no faces)")
    colours = ["#2ca02c" if v >= 0 else "#d62728" for v in index["index"]]
    fig = go.Figure(go.Bar(x=index["t_start"], y=index["index"], marker_color=colours, name="index"))
    fig.update_layout(title=title, xaxis_title="time (s)", yaxis={"title": "index", "range": [-1, 1]}, **_LAYOUT)
    return fig


def performance_distribution(
    bands: pd.DataFrame, title: str = "Learning performance (students by engagement)"
) -> go.Figure:
    """Number of students per engagement band (`dashboard.performance_bands`)."""
    if bands.empty or int(bands["students"].sum()) == 0:
        return _empty(title, "No students")
    fig = go.Figure(
        go.Bar(
            x=bands["band"], y=bands["students"], marker_color=ACCENT, text=bands["students"], textposition="outside"
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="engagement over the lecture",
        # whole students: one tick per student in a small class
        yaxis={"title": "students", "rangemode": "tozero", "dtick": 1 if bands["students"].max() <= 10 else None},
        **_LAYOUT,
    )
    return fig


def attention_heatmap(per: pd.DataFrame, title: str = "Engagement per student over time") -> go.Figure:
    """Student × time heatmap of engagement (`dashboard.per_student_bins`), 0 = absent or inattentive."""
    if per.empty:
        return _empty(title, "No students")
    grid = per.pivot(index="student", columns="t_start", values="engagement")
    order = per.drop_duplicates("student").sort_values("student_id")["student"].tolist()
    grid = grid.reindex(order)
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(), x=grid.columns.to_numpy(), y=grid.index.tolist(), zmin=0, zmax=1,
            colorscale="Blues", colorbar={"title": "engagement", "tickformat": ".0%"},
            hovertemplate="%{y}<br>t=%{x} s<br>engagement %{z:.0%}<extra></extra>",
        )
    )  # fmt: skip
    layout = dict(_LAYOUT)
    layout["height"] = max(260, 60 + 26 * len(order))
    fig.update_layout(title=title, xaxis_title="time (s)", yaxis={"autorange": "reversed"}, **layout)
    return fig


def student_timeline(timeline: pd.DataFrame, label: str) -> go.Figure:
    """One student's engagement per time bin (`dashboard.StudentFrames.timeline`)."""
    title = f"{label}: engagement over time"
    if timeline.empty:
        return _empty(title, "No observations")
    fig = go.Figure(
        go.Scatter(
            x=timeline["t_start"],
            y=timeline["engagement"],
            mode="lines+markers",
            line={"color": ACCENT},
            fill="tozeroy",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="time (s)",
        yaxis={"title": "engagement", "range": [0, 1.02], "tickformat": ".0%"},
        **_LAYOUT,
    )
    return fig


def student_emotions(emotions: pd.DataFrame, label: str) -> go.Figure:
    """One student's mean probability of each emotion per time bin (`StudentFrames.emotions`)."""
    title = f"{label}: emotions over time"
    if emotions.empty:
        return _empty(title, "No emotions (attention-only mode)")
    fig = go.Figure()
    for e in EMOTIONS:
        sub = emotions[emotions["emotion"] == e]
        fig.add_trace(
            go.Scatter(x=sub["t_start"], y=sub["probability"], name=e, mode="lines", line={"color": EMOTION_COLOURS[e]})
        )
    fig.update_layout(title=title, xaxis_title="time (s)", yaxis={"title": "probability", "range": [0, 1]}, **_LAYOUT)
    return fig


def emotion_minutes(minutes: pd.DataFrame, label: str) -> go.Figure:
    """Minutes each emotion was dominant, bars coloured by emotion (`StudentFrames.emotion_minutes`)."""
    title = f"{label}: minutes per emotion"
    if minutes.empty:
        return _empty(title, "No emotions")
    fig = go.Figure(
        go.Bar(
            x=minutes["emotion"],
            y=minutes["minutes"],
            marker_color=[EMOTION_COLOURS.get(e, ACCENT) for e in minutes["emotion"]],
            customdata=minutes["mean_confidence"],
            hovertemplate="%{x}: %{y:.2f} min, confidence %{customdata:.0%}<extra></extra>",
        )
    )
    fig.update_layout(title=title, yaxis_title="minutes", **_LAYOUT)
    return fig
