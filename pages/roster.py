"""Roster: enrol named students from 1–5 photos each (only face embeddings are kept) and remove them."""

from __future__ import annotations

import streamlit as st

from app.resources import current_store
from core.errors import ClassLensError
from core.roster import MAX_PHOTOS, clean_name, enrol, enrol_zip

st.title("Roster")
st.caption(
    "Name your students so the dashboard shows names instead of 'Student 3'. Each photo is turned into a "
    "face embedding (512 numbers); the photos themselves are never stored. Lectures analysed after you "
    "enrol someone match their faces against the roster."
)
store = current_store()
roster = store.roster_list()
if roster.empty:
    st.info("Nobody is enrolled yet.")
else:
    st.dataframe(roster, hide_index=True, width="stretch")

st.subheader("Enrol a student")
with st.form("enrol", clear_on_submit=True):
    name = st.text_input("Name")
    photos = st.file_uploader(
        f"1–{MAX_PHOTOS} photos with the student's face",
        type=["jpg", "jpeg", "png", "webp"],
        accept_multiple_files=True,
    )
    if st.form_submit_button("Enrol", type="primary"):
        try:
            with st.spinner("Reading faces…"):
                n = enrol(store, name, [p.getvalue() for p in photos or []], [p.name for p in photos or []])
            st.success(f"Enrolled {clean_name(name)} with {n} photo(s).")
            st.rerun()
        except ClassLensError as exc:
            st.error(str(exc))

with st.expander("Enrol a whole class from a zip (one folder of photos per name)"):
    archive = st.file_uploader("Zip of name/photo.jpg folders", type=["zip"])
    if archive is not None and st.button("Enrol everyone in the zip"):
        try:
            with st.spinner("Reading faces…"):
                added = enrol_zip(store, archive.getvalue(), archive.name)
            st.success("Enrolled " + ", ".join(f"{k} ({v})" for k, v in added.items()))
        except ClassLensError as exc:
            st.error(str(exc))

if not roster.empty:
    st.subheader("Remove a student")
    who = st.selectbox("Enrolled student", roster["name"].tolist())
    if st.button("Remove from the roster"):
        n = store.roster_remove(who)
        st.success(f"Removed {who} ({n} embedding(s)).")
        st.rerun()
