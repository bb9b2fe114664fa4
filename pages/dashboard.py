"""Dashboard: one lecture's class-level picture (cards, timelines, distributions, per-student table)."""

from __future__ import annotations

import streamlit as st

from app.resources import attention_only, current_store, db_str, lecture_frames, lecture_version
from app.widgets import STATUS_TEXT, chart, exports_panel, lecture_picker, percent
from core import charts, units
from core.dashboard import DEFINITIONS
from core.faces import EMOTIONS
from core.queries import lecture_row

lecture_id = lecture_picker()
if lecture_id is None:
    st.title("Dashboard")
    st.info("No lecture to show yet. Analyse one on the Home page (or try the sample lecture).")
    st.stop()

a_only = attention_only()
frames = lecture_frames(db_str(), lecture_id, lecture_version(lecture_id), a_only)
show_emotions = frames.has_emotions
lecture = lecture_row(current_store(), lecture_id)
status, name = str(lecture["status"]), str(lecture["file_name"])

st.title(f"Dashboard · {name}")
st.caption(
    f"{STATUS_TEXT.get(status, status)} · {units.duration(frames.duration_s)} long · "
    f"{units.rate(frames.sample_fps)} · time bins of {units.span(frames.bin_s)}"
)
if frames.cards.students == 0:
    st.info("No students were found in this lecture, so there is nothing to chart.")
    exports_panel(lecture_id, a_only or not show_emotions)
    st.stop()

c = frames.cards
# Rows of three cards: whole labels and numbers down to an 800-px-wide window.
cols = st.columns(3)
cols[0].metric("Students", c.students, help=DEFINITIONS["students"])
cols[1].metric("Presence", percent(c.presence), help=DEFINITIONS["presence"])
cols[2].metric("Engagement", percent(c.engagement), help=DEFINITIONS["engagement"])
if show_emotions:
    cols = st.columns(3)
    cols[0].metric("Happiness", percent(c.happiness), help=DEFINITIONS["happiness"])
    cols[1].metric("Confidence", percent(c.confidence), help=DEFINITIONS["confidence"])
    cols[2].metric("Anxiety", percent(c.anxiety), help=DEFINITIONS["anxiety"])
with st.expander("How these numbers are computed"):
    keys = ["students", "presence", "engagement", "low", "bands"]
    if show_emotions:
        keys += ["happiness", "confidence", "anxiety", "positive_index"]
    st.markdown("\n".join(f"- {DEFINITIONS[k]}" for k in keys))
if not c.attention_measured:
    st.info("Engagement was not measured for this lecture (head pose was off); presence is shown.")

# One chart per row: readable down to an 800-px-wide window.
chart(charts.engagement_timeline(frames.timeline))
chart(charts.presence_timeline(frames.per_student_bin))
chart(charts.attention_heatmap(frames.per_student_bin))
chart(charts.performance_distribution(frames.bands))
if show_emotions:
    chart(charts.emotion_distribution(frames.emotions_over_time))
    chart(charts.positive_index(frames.positive))

st.subheader("Students")
st.caption("Select a row to open that student's page.")
table = frames.table.copy()
table["time_present"] = [units.duration(m * 60) for m in table["minutes_present"]]
pct_cols = ["presence", "engagement", "face_visible_share", "head_down_share", *(f"{e}_share" for e in EMOTIONS)]
table[pct_cols] = table[pct_cols].astype(float) * 100  # shown as whole percentages
columns = ["student", "presence", "engagement", "time_present", "face_visible_share", "head_down_share",
           "hand_raised_moments", "posture"]  # fmt: skip
config = {
    "student": st.column_config.TextColumn("Student"),
    "presence": st.column_config.ProgressColumn("Presence", min_value=0, max_value=100, format="%.0f%%"),
    "engagement": st.column_config.ProgressColumn("Engagement", min_value=0, max_value=100, format="%.0f%%"),
    "time_present": st.column_config.TextColumn("Time in view (m:ss)"),
    "face_visible_share": st.column_config.NumberColumn(
        "Face visible", format="%.0f%%", help=DEFINITIONS["face_visible"]
    ),
    "head_down_share": st.column_config.NumberColumn("Head down", format="%.0f%%", help=DEFINITIONS["head_down"]),
    "hand_raised_moments": st.column_config.NumberColumn("Hand raised", help=DEFINITIONS["hand_raised"]),
    "posture": st.column_config.TextColumn("Posture", help=DEFINITIONS["posture"]),
}
if show_emotions:
    columns += [f"{e}_share" for e in EMOTIONS]
    config |= {f"{e}_share": st.column_config.NumberColumn(e.capitalize(), format="%.0f%%") for e in EMOTIONS}
event = st.dataframe(
    table[columns], hide_index=True, width="stretch", column_config=config,
    on_select="rerun", selection_mode="single-row", key=f"students-{lecture_id}",
)  # fmt: skip
rows = event.selection.rows if event is not None and hasattr(event, "selection") else []
if rows:
    st.session_state["student_id"] = int(table.iloc[rows[0]]["student_id"])
    st.switch_page("pages/students.py")

exports_panel(lecture_id, a_only or not show_emotions)
