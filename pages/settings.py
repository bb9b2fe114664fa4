"""Settings & privacy: attention-only mode, thumbnails opt-in, retention, deletion, what is stored."""

from __future__ import annotations

import streamlit as st

from app.resources import current_preferences, current_store, db_str
from app.widgets import lecture_label, lectures, read_only_archive
from core import units
from core.privacy import (
    STORED_STATEMENT,
    Preferences,
    delete_everything,
    delete_lecture,
    preferences_path,
    purge_expired,
    save_preferences,
)  # fmt: skip

st.title("Settings & privacy")
prefs = current_preferences()

with st.form("preferences"):
    attention_only = st.toggle(
        "Attention only (no emotion inference)", value=prefs.attention_only,
        help="New analyses and the live camera run no emotion model at all, and emotion views are hidden.",
    )  # fmt: skip
    keep_thumbnails = st.toggle(
        "Keep blurred face thumbnails of strong moments", value=prefs.keep_thumbnails,
        help="Off by default. When on, a few blurred face crops per student are saved next to the database "
        "while a video is analysed, and the live snapshot button saves a blurred still.",
    )  # fmt: skip
    retention_days = st.number_input(
        "Delete lectures older than (days; 0 = keep until you delete them)", min_value=0, max_value=3650,
        value=prefs.retention_days, step=1,
    )  # fmt: skip
    ice = st.text_area(
        "STUN/TURN servers for the live camera (one URL per line; leave empty on this computer)",
        value="\n".join(prefs.ice_servers),
        help="Only needed when the browser runs on another computer, e.g. stun:stun.example.org:3478.",
    )  # fmt: skip
    if st.form_submit_button("Save settings", type="primary"):
        new = Preferences(
            attention_only=attention_only, keep_thumbnails=keep_thumbnails, retention_days=int(retention_days),
            ice_servers=tuple(u.strip() for u in ice.splitlines() if u.strip()),
        )  # fmt: skip
        save_preferences(db_str(), new)
        purged = [] if current_store().read_only else purge_expired(current_store(), new.retention_days)
        st.cache_data.clear()
        st.success(
            "Settings saved"
            + (f"; {units.plural(len(purged), 'lecture')} past the retention period deleted." if purged else ".")
        )
        prefs = new
st.caption(f"Saved in `{preferences_path(db_str())}` (next to the database).")
if current_store().read_only:
    st.caption(
        "On this archive of a batch run, attention-only and the retention period apply from the next "
        "`python -m core batch … --out` run into its folder."
    )

st.subheader("What is stored")
st.markdown(STORED_STATEMENT.format(db=db_str()))

st.subheader("Delete data")
if read_only_archive("deleting lectures"):
    st.stop()
df = lectures()
if df.empty:
    st.write("No lectures are stored.")
else:
    labels = {int(r["lecture_id"]): lecture_label(r) for _, r in df.iterrows()}
    chosen = st.selectbox("Lecture", list(labels), format_func=lambda i: labels[i])
    if st.button("Delete this lecture"):
        delete_lecture(current_store(), int(chosen))
        st.session_state.pop("lecture_id", None)
        st.cache_data.clear()
        st.success(f"Deleted {labels[chosen]}.")
        st.rerun()
with st.expander("Delete everything"):
    st.write("Every lecture, every student row, the roster and all thumbnails. Settings are kept.")
    confirm = st.text_input("Type DELETE to confirm")
    if st.button("Delete everything", type="primary", disabled=confirm.strip() != "DELETE"):
        n = delete_everything(current_store())
        st.session_state.pop("lecture_id", None)
        st.cache_data.clear()
        st.success(f"Deleted {units.plural(n, 'lecture')} and the roster.")
