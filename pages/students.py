"""Students: one student's attention and emotions over the lecture, low-attention periods and
(if the teacher opted in) blurred thumbnails of the moments with the strongest signals."""

from __future__ import annotations

import streamlit as st

from app.resources import current_preferences, current_store, db_str, lecture_version, student_frames
from app.widgets import lecture_picker, percent
from core import charts
from core.dashboard import LOW_ENGAGEMENT
from core.privacy import student_thumbnails
from core.queries import students

lecture_id = lecture_picker()
st.title("Students")
if lecture_id is None:
    st.info("No lecture to show yet. Analyse one on the Home page.")
    st.stop()

roster = students(current_store(), lecture_id)
if roster.empty:
    st.info("No students were found in this lecture.")
    st.stop()
ids = [int(i) for i in roster["student_id"]]
labels = dict(zip(ids, roster["student"], strict=True))
current = st.session_state.get("student_id")
student_id = st.selectbox(
    "Student", ids, index=ids.index(current) if current in ids else 0, format_func=lambda i: labels[i]
)
st.session_state["student_id"] = student_id

prefs = current_preferences()
s = student_frames(db_str(), lecture_id, student_id, lecture_version(lecture_id))
show_emotions = not prefs.attention_only and not s.emotions.empty

c1, c2, c3 = st.columns(3)
c1.metric("Engagement over the lecture", percent(s.engagement), help="Absent moments count as 0.")
c2.metric("Minutes in view", f"{s.minutes_seen:.2f}")
c3.metric("Low-engagement periods", len(s.low_periods), help=f"Runs of time bins below {LOW_ENGAGEMENT:.0%}.")

left, right = st.columns(2)
left.plotly_chart(charts.student_timeline(s.timeline, s.label), width="stretch")
if show_emotions:
    right.plotly_chart(charts.student_emotions(s.emotions, s.label), width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(charts.emotion_minutes(s.emotion_minutes, s.label), width="stretch")
    right.markdown("**Minutes and confidence per emotion**")
    confidence_pct = s.emotion_minutes.assign(mean_confidence=s.emotion_minutes["mean_confidence"] * 100)
    right.dataframe(
        confidence_pct, hide_index=True, width="stretch",
        column_config={
            "minutes": st.column_config.NumberColumn("minutes", format="%.2f"),
            "mean_confidence": st.column_config.NumberColumn("mean confidence", format="%.0f%%"),
        },
    )  # fmt: skip

st.subheader("Low-engagement periods")
if s.low_periods.empty:
    st.write(f"None: engagement stayed at or above {LOW_ENGAGEMENT:.0%} in every time bin.")
else:
    st.dataframe(
        s.low_periods.assign(engagement=s.low_periods["engagement"] * 100), hide_index=True,
        column_config={
            "start_s": st.column_config.NumberColumn("from (s)", format="%.0f"),
            "end_s": st.column_config.NumberColumn("to (s)", format="%.0f"),
            "engagement": st.column_config.NumberColumn("mean engagement", format="%.0f%%"),
        },
    )  # fmt: skip

if show_emotions:
    st.subheader("Strongest moments")
    thumbs = student_thumbnails(db_str(), lecture_id, student_id) if prefs.keep_thumbnails else {}
    if s.strongest.empty:
        st.write("No strong non-neutral expression was seen.")
    else:
        cols = st.columns(max(4, len(s.strongest)))
        for col, m in zip(cols, s.strongest.itertuples(), strict=False):
            path = thumbs.get(int(m.frame_index))
            if path is not None:
                col.image(str(path), width=112)
            col.caption(f"{m.t:.1f} s · {m.emotion} {m.confidence:.0%}")
        if not prefs.keep_thumbnails:
            st.caption("Thumbnails are off (Settings & privacy → keep blurred thumbnails); only times are shown.")
        elif not thumbs:
            st.caption("No thumbnails were kept for this lecture (they are made while a video is analysed).")
