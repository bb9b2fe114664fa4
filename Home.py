"""ClassLens entry point: the navigation frame shared by every page."""

from __future__ import annotations

import streamlit as st

from app.resources import auto_purge, current_preferences, current_settings, current_store, db_str
from core.errors import ClassLensError

st.set_page_config(page_title="ClassLens", page_icon=":material/school:", layout="wide")

try:  # a database that is not ClassLens's, or a bad CLASSLENS_* value: one message, nothing touched
    current_store()
    current_settings()
except ClassLensError as exc:
    st.error(str(exc))
    st.stop()

prefs = current_preferences()
if prefs.retention_days and not current_store().read_only:
    auto_purge(db_str(), prefs.retention_days)

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/dashboard.py", title="Dashboard", icon=":material/dashboard:"),
    st.Page("pages/students.py", title="Students", icon=":material/person:"),
    st.Page("pages/live.py", title="Live", icon=":material/videocam:"),
    st.Page("pages/roster.py", title="Roster", icon=":material/badge:"),
    st.Page("pages/report.py", title="Report", icon=":material/description:"),
    st.Page("pages/settings.py", title="Settings & privacy", icon=":material/lock:"),
]
st.navigation(pages).run()
