"""Students: one student's presence and engagement over the lecture, low-engagement periods and
(unless attention-only; if the teacher opted in) blurred thumbnails of their strongest expressions."""

from __future__ import annotations

import streamlit as st

from app.resources import attention_only, current_preferences, current_store, db_str, lecture_version, student_frames
from app.widgets import chart, lecture_picker, percent
from core import charts, units
from core.dashboard import DEFINITIONS, LOW_ENGAGEMENT
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
s = student_frames(db_str(), lecture_id, student_id, lecture_version(lecture_id), attention_only())
show_emotions = not s.emotions.empty

c1, c2, c3, c4 = st.columns(4)
c1.metric("Presence", percent(s.presence), help=DEFINITIONS["presence"])
c2.metric("Engagement", percent(s.engagement), help=DEFINITIONS["engagement"])
c3.metric("Time in view (m:ss)", units.duration(s.minutes_present * 60))
c4.metric("Low-engagement periods", len(s.low_periods), help=DEFINITIONS["low"])
if body := s.body_sentence():
    st.caption(body, help=" ".join(DEFINITIONS[k] for k in ("face_visible", "head_down", "hand_raised", "posture")))

chart(charts.student_timeline(s.timeline, s.label))
if show_emotions:
    chart(charts.student_emotions(s.emotions, s.label))
    left, right = st.columns(2)
    chart(charts.emotion_minutes(s.emotion_minutes, s.label), left)
    right.markdown("**Time and model confidence per expression**")
    table = s.emotion_minutes.assign(
        time=[units.duration(m * 60) for m in s.emotion_minutes["minutes"]],
        mean_confidence=s.emotion_minutes["mean_confidence"] * 100,
    )
    right.dataframe(
        table[["emotion", "time", "mean_confidence"]], hide_index=True, width="stretch",
        column_config={
            "emotion": st.column_config.TextColumn("Expression"),
            "time": st.column_config.TextColumn("Time as top expression (m:ss)"),
            "mean_confidence": st.column_config.NumberColumn("Mean model confidence", format="%.0f%%"),
        },
    )  # fmt: skip

st.subheader("Low-engagement periods")
if s.low_periods.empty:
    st.write(f"None: whenever {s.label} was visible, engagement stayed at or above {LOW_ENGAGEMENT:.0%}.")
else:
    st.dataframe(
        s.low_periods.assign(
            start=[units.clock(v) for v in s.low_periods["start_s"]],
            end=[units.clock(v) for v in s.low_periods["end_s"]],
            engagement=s.low_periods["engagement"] * 100,
        )[["start", "end", "engagement"]],
        hide_index=True,
        column_config={
            "start": st.column_config.TextColumn("From (m:ss)"),
            "end": st.column_config.TextColumn("To (m:ss)"),
            "engagement": st.column_config.NumberColumn("Mean engagement", format="%.0f%%"),
        },
    )  # fmt: skip

if show_emotions:
    st.subheader("Strongest expressions")
    thumbs = student_thumbnails(db_str(), lecture_id, student_id) if prefs.keep_thumbnails else {}
    if s.strongest.empty:
        st.write("No strong non-neutral expression was seen.")
    else:
        cols = st.columns(max(4, len(s.strongest)))
        for col, m in zip(cols, s.strongest.itertuples(), strict=False):
            path = thumbs.get(int(m.frame_index))
            if path is not None:
                col.image(str(path), width=112)
            col.caption(f"{units.clock(m.t)} · {m.emotion} {m.confidence:.0%}")
        if not prefs.keep_thumbnails:
            st.caption("Thumbnails are off (Settings & privacy → keep blurred thumbnails); only times are shown.")
        elif not thumbs:
            st.caption("No thumbnails were kept for this lecture (they are made while a video is analysed).")
