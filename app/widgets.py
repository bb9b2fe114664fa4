"""Widgets shared by several pages: the sidebar lecture picker and the exports panel."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.resources import current_store, db_str, lecture_exports, lecture_version

STATUS_TEXT = {
    "complete": "complete",
    "no_faces": "no faces found",
    "interrupted": "stopped (can resume)",
    "running": "analysing…",
    "pending": "waiting",
    "failed": "failed",
}


def lectures() -> pd.DataFrame:
    """Every lecture, newest first; live lectures abandoned without STOP are closed first."""
    from core.live import finish_abandoned_live_lectures

    store = current_store()
    finish_abandoned_live_lectures(store)
    return store.list_lectures()


def lecture_label(row: pd.Series) -> str:
    """`file.mp4 · uploaded 01 Dec 18:05 · complete` (two runs of one file differ by upload time)."""
    when = pd.Timestamp(row["created_at"]).strftime("%d %b %Y %H:%M")
    live = " · live" if row["source"] == "live" else ""
    verb = "recorded" if row["source"] == "live" else "uploaded"
    return f"{row['file_name']} · {verb} {when}{live} · {STATUS_TEXT.get(row['status'], row['status'])}"


def lecture_picker() -> int | None:
    """Sidebar selectbox of lectures; remembers the choice in session_state['lecture_id']."""
    df = lectures()
    if df.empty:
        st.sidebar.info("No lectures yet: analyse one on the Home page.")
        return None
    ids = [int(i) for i in df["lecture_id"]]
    current = st.session_state.get("lecture_id")
    index = ids.index(current) if current in ids else 0
    labels = {int(r["lecture_id"]): lecture_label(r) for _, r in df.iterrows()}
    chosen = st.sidebar.selectbox("Lecture", ids, index=index, format_func=lambda i: labels[i])
    if chosen != current:
        st.session_state.pop("student_id", None)
    st.session_state["lecture_id"] = chosen
    if st.sidebar.button("Refresh", help="Read the lecture again (e.g. while a live session runs)."):
        st.rerun()
    return int(chosen)


def exports_panel(lecture_id: int, attention_only: bool = False) -> None:
    """The four exports of a lecture: two CSVs, the JSON document and the report input string
    (with no emotion in attention-only mode)."""
    data = lecture_exports(db_str(), lecture_id, lecture_version(lecture_id), attention_only)
    st.subheader("Exports")
    per_student = "presence, engagement" + ("" if attention_only else ", each expression's share and time")
    with st.container(horizontal=True):  # wraps in a narrow window instead of cutting the labels
        st.download_button(
            "Download observations CSV", data["observations_csv"], file_name=f"lecture-{lecture_id}-observations.csv",
            mime="text/csv", help="One row per student per sampled moment.",
        )  # fmt: skip
        st.download_button(
            "Download students CSV", data["students_csv"], file_name=f"lecture-{lecture_id}-students.csv",
            mime="text/csv", help=f"One row per student: {per_student}.",
        )  # fmt: skip
        st.download_button(
            "Download JSON", data["json"], file_name=f"lecture-{lecture_id}-students.json", mime="application/json",
            help=f"Each student with {per_student}.",
        )  # fmt: skip
    st.text_area(
        "Report input", data["report_input"], height=90,
        help="Per student: presence and engagement (0-1)"
        + ("." if attention_only else ", then each top expression with its mean confidence and minutes."),
    )  # fmt: skip


def read_only_archive(what: str) -> bool:
    """On a batch run's archive (read-only), say that `what` is not possible here; True if so."""
    if not current_store().read_only:
        return False
    st.info(
        f"This is the read-only archive of a batch run ({db_str()}): {what} is not possible here. "
        "Analyse more lectures with `python -m core batch SOURCE... --out DIR`, or unset CLASSLENS_DB "
        "to work on your own database."
    )
    return True


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def chart(fig: go.Figure, where=None) -> None:  # type: ignore[no-untyped-def]
    """A Plotly figure under its title written as page text: text wraps at any window width,
    a Plotly title does not (it is cut off in a narrow column)."""
    where = where or st
    title = fig.layout.title.text
    if title:
        where.markdown(f"**{title}**")
        fig.update_layout(title=None, margin={"t": 10})
    where.plotly_chart(fig, width="stretch")
