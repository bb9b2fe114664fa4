"""Home: upload a lecture and analyse it in the background, try the sample, list past lectures."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import streamlit as st

from app.jobs import Job
from app.resources import (
    current_models,
    current_preferences,
    current_settings,
    current_store,
    job_registry,
)  # fmt: skip
from app.widgets import STATUS_TEXT, lectures, read_only_archive
from core import units
from core.pipeline import analyze, file_sha256
from core.privacy import delete_lecture, save_thumbnails, strongest_moments_all
from core.settings import PROJECT_ROOT
from core.video import VIDEO_SUFFIXES

SAMPLE = PROJECT_ROOT / "samples" / "sample_lecture.mp4"

st.title("ClassLens")
measures = "attention" if current_preferences().attention_only else "attention and facial expression"
st.caption(
    "Upload a recorded lecture. ClassLens finds each student, follows them through the video as one "
    f"anonymous student, and measures {measures}. Only numbers are stored: no video "
    "frames, no face images. Everything runs on this computer."
)


def lecture_key(sha256: str) -> str:
    """What makes a lecture: the file's content and the settings it is analysed with."""
    return f"{sha256}|{current_settings().analysis_key()}"


def show_job(job: Job) -> None:
    """This tab follows `job` (its own or one started by another tab)."""
    jobs = st.session_state.setdefault("jobs", [])
    if job.job_id not in jobs:
        jobs.append(job.job_id)


def start_job(video: Path, name: str, key: str, *, temporary: bool, replaces: int | None = None) -> None:
    """Analyse `video` in a background thread, unless its lecture is being analysed already (then
    this tab shows that job); this tab remembers the job.

    Args:
        name: the original file name, used in every message (never the temporary copy's).
        key: the lecture's key (`lecture_key`): one job per lecture.
        replaces: a past lecture of the same file to delete first (re-analysis with the roster).
    """
    settings, prefs, store = current_settings(), current_preferences(), current_store()
    models = current_models(settings)

    def run(progress, cancel):  # type: ignore[no-untyped-def]
        if replaces is not None:
            delete_lecture(store, replaces)
        result = analyze(video, store, settings, models=models, progress=progress, cancel=cancel, display_name=name)
        result.warnings = [w.replace(video.name, name) for w in result.warnings]
        if prefs.keep_thumbnails and result.status == "complete" and not result.reused:
            progress(1.0, "saving blurred thumbnails")
            save_thumbnails(store, result.lecture_id, video, strongest_moments_all(store, result.lecture_id))
        return result

    cleanup = (lambda: video.unlink(missing_ok=True)) if temporary else None
    job, started = job_registry().submit_once(key, name, run, cleanup)
    if not started:
        st.session_state["already_running"] = job.job_id
    show_job(job)
    st.rerun()  # draw the page again with Analyse disabled while the job runs


def my_jobs() -> list[Job]:
    registry = job_registry()
    return [j for j in (registry.get(i) for i in st.session_state.get("jobs", [])) if j is not None]


def follow_if_running(key: str) -> None:
    """When this lecture is being analysed (by any tab), this tab follows that job: the page is
    drawn again at once (st.rerun does not return)."""
    job = job_registry().running(key)
    if job is not None:
        st.session_state["already_running"] = job.job_id
        show_job(job)
        st.rerun()


def save_upload(upload) -> Path:  # type: ignore[no-untyped-def]
    """A temporary copy of an uploaded file (deleted when its analysis ends)."""
    fd, tmp = tempfile.mkstemp(prefix="classlens-", suffix=Path(upload.name).suffix.lower())
    with os.fdopen(fd, "wb") as f:
        f.write(upload.getbuffer())
    return Path(tmp)


read_only = read_only_archive("uploading, analysing, re-analysing or deleting lectures")
if not read_only:
    limit_mb = st.get_option("server.maxUploadSize")
    kinds = ", ".join(s.strip(".") for s in VIDEO_SUFFIXES)
    upload = st.file_uploader(
        f"Lecture video ({kinds}; up to {limit_mb} MB)", type=[s.strip(".") for s in VIDEO_SUFFIXES],
        help=f"The size limit ({limit_mb} MB) is set by server.maxUploadSize in .streamlit/config.toml.",
    )  # fmt: skip
    busy = any(j.active for j in my_jobs())  # one analysis at a time per tab: Analyse waits for it
    c1, c2 = st.columns([1, 3])
    analyse_help = "Wait for the running analysis to finish (or cancel it)." if busy else None
    if c1.button("Analyse", type="primary", disabled=upload is None or busy, help=analyse_help) and not busy:
        assert upload is not None
        key = lecture_key(hashlib.sha256(upload.getbuffer()).hexdigest())
        follow_if_running(key)  # before a copy of the upload is written
        start_job(save_upload(upload), upload.name, key, temporary=True)
    sample_help = "A 20-second real clip shipped with ClassLens (samples/SOURCE.md)."
    if c2.button("Try the sample lecture", help=sample_help, disabled=busy) and not busy:
        start_job(SAMPLE, SAMPLE.name, lecture_key(file_sha256(SAMPLE)), temporary=False)
if (shown := st.session_state.pop("already_running", None)) is not None:
    job = job_registry().get(shown)
    if job is not None and job.active:
        st.info(f"{job.name} is already being analysed; its progress is shown below.")


def job_view(job: Job) -> None:
    if job.active:
        eta = job.eta()
        left = f" · about {units.duration(eta)} left" if eta is not None else ""
        st.progress(job.fraction, text=f"**{job.name}**: {job.message} · {units.duration(job.elapsed())} elapsed{left}")
        if st.button("Cancel", key=f"cancel-{job.job_id}", help="Stops after the current batch; what is done is kept."):
            job.cancel.set()
            job.message = "cancelling…"
    elif job.status == "done" and job.result is not None:
        r = job.result
        if r.status == "no_faces":
            st.warning(f"{job.name}: no students were found, so there is nothing to show.")
        else:
            again = (
                " (already analysed with these settings; to name students enrolled since, use "
                "“Re-analyse with the roster” below)"
                if r.reused
                else ""
            )
            st.success(
                f"Analysed {job.name}{again}: {units.plural(r.students, 'student')}, "
                f"{units.plural(r.observations, 'observation')} in {units.duration(job.elapsed())}."
            )
            if st.button("Open its dashboard", key=f"open-{job.job_id}", type="primary"):
                st.session_state["lecture_id"] = r.lecture_id
                st.switch_page("pages/dashboard.py")
        for w in r.warnings:
            st.warning(w)
    elif job.status == "cancelled":
        st.info(f"{job.name}: stopped. What was analysed is kept; analyse the same file again to resume.")
    elif job.status == "failed":
        st.error(f"{job.name}: {job.error}")


def my_jobs() -> list[Job]:
    registry = job_registry()
    return [j for j in (registry.get(i) for i in st.session_state.get("jobs", [])) if j is not None]


# Poll once a second only while one of this tab's analyses runs.
@st.fragment(run_every=1.0 if any(j.active for j in my_jobs()) else None)
def jobs_panel() -> None:
    mine = my_jobs()
    for job in mine:
        job_view(job)
    running = {j.job_id for j in mine if j.active}
    if st.session_state.get("running_jobs", set()) - running:
        st.session_state["running_jobs"] = running
        st.rerun()  # a job finished: refresh the lecture list and stop polling
    st.session_state["running_jobs"] = running


jobs_panel()

st.subheader("Past lectures")
df = lectures()
if df.empty:
    st.info("No lectures yet. Upload one above, or try the sample lecture.")
has_roster = not current_store().roster_list().empty


def reanalyse(row) -> None:  # type: ignore[no-untyped-def]
    """The popover body: upload the same file again (the upload is not kept) or use the sample."""
    st.write(
        f"Analyse **{row.file_name}** again, matching its students against the roster. The current results "
        "of this lecture are replaced."
    )
    if not has_roster:
        st.caption("Nobody is enrolled yet: add students on the Roster page first.")
    if row.file_name == SAMPLE.name and row.sha256 == file_sha256(SAMPLE):
        if st.button("Re-analyse the sample", key=f"redo-sample-{row.lecture_id}", type="primary"):
            start_job(SAMPLE, SAMPLE.name, lecture_key(row.sha256), temporary=False, replaces=int(row.lecture_id))
            st.rerun()
        return
    again = st.file_uploader(f"The same video ({row.file_name})", key=f"redo-file-{row.lecture_id}")
    if again is not None and st.button("Re-analyse", key=f"redo-{row.lecture_id}", type="primary"):
        tmp = save_upload(again)
        if file_sha256(tmp) != row.sha256:
            tmp.unlink(missing_ok=True)
            st.error(f"{again.name} is not the same file as {row.file_name}; nothing was changed.")
            return
        start_job(tmp, row.file_name, lecture_key(row.sha256), temporary=True, replaces=int(row.lecture_id))
        st.rerun()


for row in df.head(50).itertuples():
    with st.container(border=True):
        info, actions = st.columns([3, 2], vertical_alignment="center")
        when = "recorded" if row.source == "live" else "uploaded"
        duration = "—" if row.duration_s != row.duration_s or row.duration_s is None else units.duration(row.duration_s)
        info.markdown(f"**{row.file_name}**" + (" · live" if row.source == "live" else ""))
        info.caption(
            f"{when} {row.created_at:%d %b %Y %H:%M} · {duration} long · {units.plural(int(row.students), 'student')} "
            f"· {STATUS_TEXT.get(row.status, row.status)}"
        )
        with actions.container(horizontal=True, horizontal_alignment="right"):
            if st.button("Open", key=f"open-lecture-{row.lecture_id}"):
                st.session_state["lecture_id"] = int(row.lecture_id)
                st.switch_page("pages/dashboard.py")
            if read_only:
                continue
            if row.source != "live":
                with st.popover("Re-analyse", help="Re-analyse with the roster", disabled=row.status == "running"):
                    reanalyse(row)
            with st.popover(":material/delete:", help="Delete this lecture", disabled=row.status == "running"):
                st.write(f"Delete **{row.file_name}** ({when} {row.created_at:%d %b %Y %H:%M}) and all its rows? "
                         "This cannot be undone.")  # fmt: skip
                if st.button("Delete for good", key=f"delete-{row.lecture_id}", type="primary"):
                    delete_lecture(current_store(), int(row.lecture_id))
                    if st.session_state.get("lecture_id") == int(row.lecture_id):
                        st.session_state.pop("lecture_id")
                    st.rerun()
