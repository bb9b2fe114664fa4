"""Plotly figures for the dashboard, the student drilldown and the live page (DataFrame -> Figure).

Pure functions: no database, no Streamlit. Inputs are the frames of `core.dashboard`. Time axes
read m:ss; nothing is drawn across time bins without a reading (gaps stay gaps); titles say what
is measured and stay short enough for a chart half of an 800-px-wide window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core import units
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
    "title_font_size": 15,
    "height": 340,
    "template": "plotly_white",
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
}


NOT_VISIBLE = "#d9d9d9"
TIME_TITLE = "time into the lecture (m:ss)"


def _time_axis(t: pd.Series | np.ndarray) -> dict[str, object]:
    """An x axis in seconds whose ticks read m:ss (about six ticks at round steps)."""
    values = np.asarray(t, dtype=float)
    end = float(values.max()) if values.size else 0.0
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600) if end / s <= 6), 7200)
    ticks = np.arange(0, end + step / 2, step)
    return {"title": TIME_TITLE, "tickvals": ticks.tolist(), "ticktext": [units.clock(x) for x in ticks]}


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **_LAYOUT)
    return fig


def engagement_timeline(timeline: pd.DataFrame, title: str = "Class engagement over time") -> go.Figure:
    """Class engagement per time bin with the middle half and the range of visible students.

    Args:
        timeline: `core.metrics.class_timeline` output (t_start seconds; values in [0, 1]; NaN
            where nobody was visible: the line breaks there).
    """
    if timeline.empty or timeline["mean"].isna().all():
        return _empty(title, "No engagement measured yet")
    tl = timeline
    t = tl["t_start"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=tl["max"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=t, y=tl["min"], mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor="rgba(59,111,216,0.10)", name="lowest to highest student",
        )
    )  # fmt: skip
    fig.add_trace(go.Scatter(x=t, y=tl["p75"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=t, y=tl["p25"], mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor="rgba(59,111,216,0.25)", name="middle half of students",
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=t, y=tl["mean"], mode="lines+markers", line={"color": ACCENT, "width": 2}, name="class",
            connectgaps=False,
        )
    )  # fmt: skip
    fig.update_layout(
        title=title, xaxis=_time_axis(t), yaxis={"title": "engagement", "range": [0, 1.02], "tickformat": ".0%"},
        **_LAYOUT,
    )  # fmt: skip
    return fig


def presence_timeline(per: pd.DataFrame, title: str = "Students in view over time") -> go.Figure:
    """Number of students present per time bin (mean over the bin's moments), bars.

    Args:
        per: `core.metrics.per_student_bins` output (presence in [0, 1] per student and bin).
    """
    if per.empty:
        return _empty(title, "No students")
    g = per.groupby("t_start")["presence"].sum().reset_index()
    fig = go.Figure(go.Bar(x=g["t_start"], y=g["presence"], marker_color="#7aa0e8", name="students in view",
                           hovertemplate="%{y:.1f} students in view<extra></extra>"))  # fmt: skip
    n = per["student_id"].nunique()
    fig.update_layout(
        title=title, xaxis=_time_axis(g["t_start"]), bargap=0.05,
        yaxis={"title": "students in view", "range": [0, n], "dtick": 1 if n <= 10 else None}, **_LAYOUT,
    )  # fmt: skip
    return fig


def emotion_distribution(shares: pd.DataFrame, title: str = "Expressions over time") -> go.Figure:
    """Stacked bars of the share of each top expression per time bin (`metrics.emotions_over_time`);
    bins without a face reading stay empty."""
    if shares.empty:
        return _empty(title, "No expressions measured")
    fig = go.Figure()
    for e in EMOTIONS:
        sub = shares[shares["emotion"] == e]
        fig.add_trace(go.Bar(x=sub["t_start"], y=sub["share"], name=e, marker_color=EMOTION_COLOURS[e]))
    fig.update_layout(
        title=title, barmode="stack", bargap=0.05, xaxis=_time_axis(shares["t_start"]),
        yaxis={"title": "share of face readings", "range": [0, 1], "tickformat": ".0%"}, **_LAYOUT,
    )  # fmt: skip
    return fig


def positive_index(index: pd.DataFrame, title: str = "Positive-expression index") -> go.Figure:
    """Bars of the per-bin positive-emotion index in [−1, 1] (`metrics.positive_index_bins`)."""
    if index.empty:
        return _empty(title, "No expressions measured")
    colours = ["#2ca02c" if v >= 0 else "#d62728" for v in index["index"]]
    fig = go.Figure(go.Bar(x=index["t_start"], y=index["index"], marker_color=colours, name="index"))
    fig.update_layout(
        title=title, xaxis=_time_axis(index["t_start"]), yaxis={"title": "index", "range": [-1, 1]}, **_LAYOUT
    )
    return fig


def performance_distribution(bands: pd.DataFrame, title: str = "Students by engagement") -> go.Figure:
    """Number of students per engagement band over the whole lecture (`metrics.performance_bands`)."""
    if bands.empty or int(bands["students"].sum()) == 0:
        return _empty(title, "No students with engagement measured")
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
    """Student x time heatmap of engagement (`metrics.per_student_bins`); grey = not visible."""
    if per.empty:
        return _empty(title, "No students")
    grid = per.pivot(index="student", columns="t_start", values="engagement")
    order = per.drop_duplicates("student").sort_values("student_id")["student"].tolist()
    grid = grid.reindex(order).astype(float)
    z = grid.to_numpy()
    x = grid.columns.to_numpy(dtype=float)
    text = [[units.clock(v) for v in x] for _ in order]
    fig = go.Figure(
        go.Heatmap(
            z=z, x=x, y=grid.index.tolist(), zmin=0, zmax=1, text=text, name="engagement",
            colorscale="Blues", colorbar={"title": "engagement", "tickformat": ".0%"},
            hovertemplate="%{y}<br>%{text}<br>engagement %{z:.0%}<extra></extra>",
        )
    )  # fmt: skip
    hidden = np.where(np.isnan(z), 1.0, np.nan)
    fig.add_trace(
        go.Heatmap(
            z=hidden, x=x, y=grid.index.tolist(), zmin=0, zmax=1, text=text, name="not visible",
            colorscale=[[0, NOT_VISIBLE], [1, NOT_VISIBLE]], showscale=False,
            hovertemplate="%{y}<br>%{text}<br>not visible<extra></extra>",
        )
    )  # fmt: skip
    layout = dict(_LAYOUT)
    layout["height"] = max(260, 80 + 26 * len(order))
    fig.update_layout(title=f"{title} (grey: not visible)", xaxis=_time_axis(x), yaxis={"autorange": "reversed"},
                      **layout)  # fmt: skip
    return fig


def student_timeline(timeline: pd.DataFrame, label: str) -> go.Figure:
    """One student's engagement per time bin (`dashboard.StudentFrames.timeline`); the line breaks
    where the student was not visible."""
    title = f"{label}: engagement over time"
    if timeline.empty or timeline["engagement"].isna().all():
        return _empty(title, "Not visible, or engagement not measured")
    fig = go.Figure(
        go.Scatter(
            x=timeline["t_start"], y=timeline["engagement"], mode="lines+markers", line={"color": ACCENT},
            connectgaps=False, name="engagement",
        )
    )  # fmt: skip
    fig.update_layout(
        title=title, xaxis=_time_axis(timeline["t_start"]),
        yaxis={"title": "engagement", "range": [0, 1.02], "tickformat": ".0%"}, **_LAYOUT,
    )  # fmt: skip
    return fig


def student_emotions(emotions: pd.DataFrame, label: str) -> go.Figure:
    """One student's mean probability of each expression per time bin (`StudentFrames.emotions`,
    NaN in bins without a face reading: the lines break there)."""
    title = f"{label}: expressions over time"
    if emotions.empty:
        return _empty(title, "No expressions measured")
    wide = emotions.pivot_table(index="t_start", columns="emotion", values="probability", dropna=False).reset_index()
    fig = go.Figure()
    for e in EMOTIONS:
        if e in wide:
            fig.add_trace(
                go.Scatter(x=wide["t_start"], y=wide[e], name=e, mode="lines+markers", connectgaps=False,
                           line={"color": EMOTION_COLOURS[e]}, marker={"size": 4})
            )  # fmt: skip
    fig.update_layout(
        title=title, xaxis=_time_axis(wide["t_start"]), yaxis={"title": "probability", "range": [0, 1]}, **_LAYOUT
    )
    return fig


def emotion_minutes(minutes: pd.DataFrame, label: str) -> go.Figure:
    """Time each expression was the top one, m:ss (`StudentFrames.emotion_minutes`)."""
    title = f"{label}: time per expression"
    if minutes.empty:
        return _empty(title, "No expressions measured")
    seconds = minutes["minutes"].astype(float) * 60
    fig = go.Figure(
        go.Bar(
            x=minutes["emotion"], y=seconds,
            marker_color=[EMOTION_COLOURS.get(e, ACCENT) for e in minutes["emotion"]],
            customdata=[[units.clock(v), c] for v, c in zip(seconds, minutes["mean_confidence"], strict=True)],
            hovertemplate="%{x}: %{customdata[0]}, confidence %{customdata[1]:.0%}<extra></extra>",
        )
    )  # fmt: skip
    top = float(seconds.max()) if len(seconds) else 0.0
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800) if top / s <= 5), 3600)
    ticks = np.arange(0, top + step, step)
    yaxis = {"title": "time (m:ss)", "tickvals": ticks.tolist(), "ticktext": [units.clock(v) for v in ticks]}
    fig.update_layout(title=title, yaxis=yaxis, **_LAYOUT)
    return fig
