"""Roster: enrol named students from 1–5 photos each (only face embeddings are kept) and remove them.

Enrolling a name that is on the roster already asks whether to add the photos or replace theirs;
every change ends with a confirmation that stays on screen.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.resources import current_store
from app.widgets import read_only_archive
from core import units
from core.errors import ClassLensError
from core.roster import MAX_PHOTOS, clean_name, embed_photos, enrol_zip, photos_of

st.title("Roster")
st.caption(
    "Name your students so the dashboard shows names instead of 'Student 3'. Each photo is turned into a "
    "face embedding (512 numbers); the photos themselves are never stored. Lectures analysed after you "
    "enrol someone match their faces against the roster; to name the students of a past lecture, use "
    "“Re-analyse with the roster” on the Home page."
)
store = current_store()
done = st.session_state.pop("roster_done", None)
if done:
    st.success(done)


def save(name: str, embeddings: np.ndarray, *, replace: bool) -> None:
    """Write the embeddings and keep a confirmation for the next run of the page."""
    store.roster_add(name, embeddings, replace=replace)
    total = photos_of(store, name)
    verb = "Replaced the photos of" if replace else "Enrolled"
    st.session_state["roster_done"] = f"{verb} {name}: {units.plural(total, 'photo')} on the roster now."
    st.session_state.pop("roster_pending", None)
    st.rerun()


roster = store.roster_list()
if roster.empty:
    st.info("Nobody is enrolled yet.")
else:
    st.dataframe(
        roster.assign(added_at=roster["added_at"].dt.strftime("%d %b %Y %H:%M")),
        hide_index=True, width="stretch",
        column_config={
            "name": st.column_config.TextColumn("Name"),
            "photos": st.column_config.NumberColumn("Photos"),
            "added_at": st.column_config.TextColumn("Enrolled on"),
        },
    )  # fmt: skip

pending = st.session_state.get("roster_pending")
if pending:
    name, embeddings = pending["name"], pending["embeddings"]
    have = photos_of(store, name)
    st.warning(
        f"{name} is on the roster already with {units.plural(have, 'photo')}. Add the "
        f"{units.plural(len(embeddings), 'new photo')} to theirs, or replace theirs with the new ones?"
    )
    c1, c2, c3 = st.columns(3)
    if c1.button(
        "Add the photos", type="primary", disabled=have + len(embeddings) > MAX_PHOTOS,
        help=f"At most {MAX_PHOTOS} photos are kept per name.",
    ):  # fmt: skip
        save(name, embeddings, replace=False)
    if c2.button("Replace their photos"):
        save(name, embeddings, replace=True)
    if c3.button("Cancel"):
        st.session_state.pop("roster_pending")
        st.rerun()

if read_only_archive("enrolling or removing students"):
    st.stop()

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
            name = clean_name(name)
            with st.spinner("Reading faces…"):
                embeddings = embed_photos(name, [p.getvalue() for p in photos or []], [p.name for p in photos or []])
            if photos_of(store, name):
                st.session_state["roster_pending"] = {"name": name, "embeddings": embeddings}
                st.rerun()
            save(name, embeddings, replace=False)
        except ClassLensError as exc:
            st.error(str(exc))

with st.expander("Enrol a whole class from a zip (one folder of photos per name)"):
    archive = st.file_uploader("Zip of name/photo.jpg folders", type=["zip"])
    if archive is not None and st.button("Enrol everyone in the zip"):
        try:
            with st.spinner("Reading faces…"):
                added = enrol_zip(store, archive.getvalue(), archive.name)
            st.session_state["roster_done"] = "Enrolled " + ", ".join(
                f"{k} ({units.plural(v, 'photo')})" for k, v in added.items()
            )
            st.rerun()
        except ClassLensError as exc:
            st.error(str(exc))

if not roster.empty:
    st.subheader("Remove a student")
    who = st.selectbox("Enrolled student", roster["name"].tolist())
    if st.button("Remove from the roster"):
        n = store.roster_remove(who)
        st.session_state["roster_done"] = f"Removed {who} ({units.plural(n, 'photo')}) from the roster."
        st.rerun()
