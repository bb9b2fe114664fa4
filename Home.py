"""ClassLens entry point: the navigation frame shared by every page."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="ClassLens", page_icon="🎓", layout="wide")

pages = [
    st.Page("pages/analyse.py", title="Analyse a lecture", icon="🎬", default=True),
]
st.navigation(pages).run()
