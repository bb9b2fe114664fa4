"""Report: recommendations for a lecture from its facts, written by rules, a local model or an endpoint."""

from __future__ import annotations

import time

import streamlit as st

from app.resources import attention_only, current_store
from app.widgets import lecture_label
from core.errors import ClassLensError
from core.report import (
    WRITERS,
    ReportConfig,
    apply_input,
    build_facts,
    generate,
    input_string,
    list_reports,
    save_report,
)

WRITER_LABELS = {
    "rules": "Rules (instant, deterministic)",
    "local": "Local language model (offline)",
    "openai": "School's own server (OpenAI-compatible)",
}

st.title("Lecture report")
st.caption(
    "Study tips, break suggestions, motivational feedback, learning strategies and focus tips, each tied to "
    "what was measured. A language model may word the summary and notes, but every number, name and "
    "direction (low/high, rose/fell) it writes is checked against the lecture's figures."
)
store = current_store()
lectures = store.list_lectures()
if lectures.empty:
    st.info("No lecture yet: analyse one first.")
    st.stop()

ids = lectures["lecture_id"].tolist()
default = ids.index(st.session_state["lecture_id"]) if st.session_state.get("lecture_id") in ids else 0
labels = {int(r["lecture_id"]): lecture_label(r) for _, r in lectures.iterrows()}
lecture_id = st.selectbox("Lecture", ids, index=default, format_func=lambda i: labels[int(i)])
st.session_state["lecture_id"] = lecture_id
facts = build_facts(store, int(lecture_id), attention_only=attention_only())

config = ReportConfig.from_env()
available = config.available()
choices = [w for w in WRITERS if available[w]]
writer = st.radio(
    "Writer", choices, index=choices.index(config.writer) if config.writer in choices else 0,
    format_func=WRITER_LABELS.get, horizontal=True,
)  # fmt: skip
if not available["local"]:
    st.caption("The local model is not installed (`make setup` installs it).")

with st.form("report_input"):
    text_in = st.text_area(
        "Report input (editable: Name: presence=0.95; engagement=0.72"
        + ("" if facts.attention_only else "; happy=0.80 (5.00min)")
        + "; … | Name: …)",
        input_string(facts), height=100, key=f"input-{lecture_id}",
    )  # fmt: skip
    generate_clicked = st.form_submit_button("Generate report", type="primary")
regenerate_clicked = "report" in st.session_state and st.button("Regenerate")

if generate_clicked or regenerate_clicked:
    try:
        used = apply_input(facts, text_in)
        bar = st.progress(0.0, text="Starting…")
        box = st.empty()
        shown: list[str] = []
        started = time.monotonic()

        def on_text(piece: str) -> None:
            shown.append(piece)
            box.markdown("".join(shown) + " ▌")

        def on_progress(frac: float, msg: str) -> None:
            bar.progress(min(1.0, frac), text=msg)

        with st.spinner("Loading the model…" if writer != "rules" else "Writing…"):
            report = generate(used, writer, config=config, on_text=on_text, progress=on_progress)
        box.empty()
        bar.empty()
        if store.read_only:
            st.caption("Not saved: this archive of a batch run is read-only (download the report below).")
        else:
            save_report(store, int(lecture_id), report.writer, report.model, report.text)
        st.session_state["report"] = {
            "text": report.text, "notes": report.notes, "removed": [p.describe() for p in report.removed],
            "writer": report.writer, "model": report.model, "seconds": time.monotonic() - started,
            "first_token_s": report.first_token_s,
        }  # fmt: skip
    except ClassLensError as exc:
        st.error(str(exc))

shown_report = st.session_state.get("report")
if shown_report:
    for note in shown_report["notes"]:
        st.warning(note)
    if shown_report["removed"]:
        with st.expander("What the check took out"):
            st.markdown("\n".join(f"- {p}" for p in shown_report["removed"][:8]))
    ttft = shown_report["first_token_s"]
    st.caption(
        f"Written by {shown_report['model'] or 'the rules writer'} in {shown_report['seconds']:.1f} s"
        + (f" (first words after {ttft:.1f} s)" if ttft is not None else "")
    )
    st.markdown(shown_report["text"])
    c1, c2 = st.columns(2)
    c1.download_button("Download .txt", shown_report["text"], file_name=f"lecture-{lecture_id}-report.txt",
                       mime="text/plain")  # fmt: skip
    c2.download_button("Download .md", shown_report["text"], file_name=f"lecture-{lecture_id}-report.md",
                       mime="text/markdown")  # fmt: skip

past = list_reports(store, int(lecture_id))
if not past.empty:
    with st.expander(f"Past reports of this lecture ({len(past)})"):
        pick = st.selectbox(
            "Report", list(range(len(past))),
            format_func=lambda i: f"{past['created_at'].iloc[i]:%Y-%m-%d %H:%M:%S} · {past['writer'].iloc[i]}"
            + (f" ({past['model'].iloc[i]})" if past["model"].iloc[i] else ""),
        )  # fmt: skip
        st.markdown(past["text"].iloc[pick])
        st.download_button("Download this report (.md)", past["text"].iloc[pick],
                           file_name=f"lecture-{lecture_id}-report-{pick}.md", mime="text/markdown")  # fmt: skip
