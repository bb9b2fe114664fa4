"""Dashboard: one lecture's class-level picture (cards, timelines, distributions, per-student table)."""

from __future__ import annotations

import streamlit as st

from app.resources import current_preferences, current_store, db_str, lecture_frames, lecture_version
from app.widgets import STATUS_TEXT, exports_panel, lecture_picker, percent
from core import charts
from core.dashboard import DEFINITIONS
from core.faces import EMOTIONS
from core.queries import lecture_row

lecture_id = lecture_picker()
if lecture_id is None:
    st.title("Dashboard")
    st.info("No lecture to show yet. Analyse one on the Home page (or try the sample lecture).")
    st.stop()

lecture = lecture_row(current_store(), lecture_id)
frames = lecture_frames(db_str(), lecture_id, lecture_version(lecture_id))
show_emotions = frames.has_emotions and not current_preferences().attention_only
engagement_note = DEFINITIONS["engagement_measured" if frames.cards.attention_measured else "engagement_proxy"]

st.title(f"Dashboard · {lecture['file_name']}")
st.caption(
    f"{STATUS_TEXT.get(lecture['status'], lecture['status'])} · {frames.duration_s:.0f} s · "
    f"{frames.sample_fps:g} samples per second · time bins of {frames.bin_s:g} s"
)
if frames.cards.students == 0:
    st.info("No faces were found in this lecture, so there is nothing to chart.")
    exports_panel(lecture_id)
    st.stop()

c = frames.cards
cols = st.columns(5 if show_emotions else 2)
cols[0].metric("Students", c.students, help=DEFINITIONS["students"])
cols[1].metric(
    "Average engagement" if c.attention_measured else "Average engagement (face present)",
    percent(c.engagement), help=engagement_note,
)  # fmt: skip
if show_emotions:
    cols[2].metric("Average happiness", percent(c.happiness), help=DEFINITIONS["happiness"])
    cols[3].metric("Average confidence", percent(c.confidence), help=DEFINITIONS["confidence"])
    cols[4].metric("Average anxiety", percent(c.anxiety), help=DEFINITIONS["anxiety"])
with st.expander("How these numbers are computed"):
    keys = ["students", "engagement_measured" if c.attention_measured else "engagement_proxy", "performance"]
    if show_emotions:
        keys += ["happiness", "confidence", "anxiety", "positive_index"]
    st.markdown("\n".join(f"- {DEFINITIONS[k]}" for k in keys))
if not c.attention_measured:
    st.info(DEFINITIONS["engagement_proxy"])

left, right = st.columns(2)
left.plotly_chart(charts.engagement_timeline(frames.timeline), width="stretch")
right.plotly_chart(charts.performance_distribution(frames.bands), width="stretch")
if show_emotions:
    left, right = st.columns(2)
    left.plotly_chart(charts.emotion_distribution(frames.emotions_over_time), width="stretch")
    right.plotly_chart(charts.positive_index(frames.positive), width="stretch")
st.plotly_chart(charts.attention_heatmap(frames.per_student_bin), width="stretch")

st.subheader("Students")
st.caption("Select a row to open that student's drilldown.")
table = frames.table.copy()
share_cols = ["engagement", *(f"{e}_share" for e in EMOTIONS)]
table[share_cols] = table[share_cols] * 100  # shown as whole percentages
columns = ["student", "minutes_seen", "engagement"]
if show_emotions:
    columns += [f"{e}_{k}" for e in EMOTIONS for k in ("share", "minutes")]
config = {
    "student": st.column_config.TextColumn("Student"),
    "minutes_seen": st.column_config.NumberColumn("Minutes seen", format="%.2f"),
    "engagement": st.column_config.ProgressColumn("Engagement", min_value=0, max_value=100, format="%.0f%%"),
}
for e in EMOTIONS:
    config[f"{e}_share"] = st.column_config.NumberColumn(f"{e} share", format="%.0f%%")
    config[f"{e}_minutes"] = st.column_config.NumberColumn(f"{e} min", format="%.2f")
event = st.dataframe(
    table[columns], hide_index=True, width="stretch", column_config=config,
    on_select="rerun", selection_mode="single-row", key=f"students-{lecture_id}",
)  # fmt: skip
rows = event.selection.rows if event is not None and hasattr(event, "selection") else []
if rows:
    st.session_state["student_id"] = int(table.iloc[rows[0]]["student_id"])
    st.switch_page("pages/students.py")

exports_panel(lecture_id)
