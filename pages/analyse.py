"""Upload a lecture, analyse it with a progress bar, see the per-student summary and download CSVs."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import streamlit as st

from app.resources import current_settings, current_store, models_for
from core import exports, queries
from core.errors import ClassLensError
from core.pipeline import analyze
from core.video import VIDEO_SUFFIXES

st.title("ClassLens")
st.caption(
    "Upload a recorded lecture. ClassLens finds each student's face, follows it through the video as one "
    "anonymous student and reads facial expression. Only numbers are stored: no video frames, no face images."
)
settings = current_settings()
limit_mb = st.get_option("server.maxUploadSize")
upload = st.file_uploader(
    f"Lecture video ({', '.join(s.strip('.') for s in VIDEO_SUFFIXES)}; up to {limit_mb} MB)",
    type=[s.strip(".") for s in VIDEO_SUFFIXES],
)

if upload is not None and st.button("Analyse", type="primary"):
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    tmp = Path(tempfile.gettempdir()) / f"classlens-{digest}{Path(upload.name).suffix.lower()}"
    tmp.write_bytes(data)
    bar = st.progress(0.0, text="Starting…")
    started = time.monotonic()

    def progress(frac: float, msg: str) -> None:
        elapsed = time.monotonic() - started
        eta = f", about {elapsed / frac - elapsed:.0f} s left" if 0.02 < frac < 1 else ""
        bar.progress(frac, text=f"{msg} ({elapsed:.0f} s{eta})")

    try:
        result = analyze(
            tmp, current_store(), settings, models=models_for(settings.attention_only, settings.emotion_model),
            progress=progress, display_name=upload.name,
        )  # fmt: skip
        st.session_state["lecture_id"] = result.lecture_id
        for w in result.warnings:
            st.warning(w)
        if result.status == "complete":
            st.success(f"Analysed {upload.name}: {result.students} students, {result.observations} observations.")
    except ClassLensError as exc:
        st.error(str(exc))
    finally:
        tmp.unlink(missing_ok=True)

lecture_id = st.session_state.get("lecture_id")
if lecture_id is not None:
    store = current_store()
    summary = queries.student_summary(store, lecture_id)
    if summary.empty:
        st.info("No faces were found in this lecture, so there is nothing to summarise.")
    else:
        st.subheader("Students")
        cols = ["student", "observations", "minutes_seen"] + [c for c in summary.columns if c.endswith("_share")]
        st.dataframe(summary[cols], hide_index=True, use_container_width=True)
        st.text_input("Report input", queries.report_input(store, lecture_id), disabled=True)
        c1, c2 = st.columns(2)
        c1.download_button(
            "Download observations CSV", exports.observations_csv(store, lecture_id),
            file_name=f"lecture-{lecture_id}-observations.csv", mime="text/csv",
        )  # fmt: skip
        c2.download_button(
            "Download students CSV", exports.students_csv(store, lecture_id),
            file_name=f"lecture-{lecture_id}-students.csv", mime="text/csv",
        )  # fmt: skip
