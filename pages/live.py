"""Live: the webcam through streamlit-webrtc, analysed as it runs and saved as a live lecture.

The frame callback (video thread) only swaps in the newest frame and draws the latest boxes; the
models run in the analyser's worker thread; a fragment rerun every few seconds (on the script
thread) appends results to DuckDB and redraws the live charts. Stopping the camera closes the
lecture (it then appears in the history).
"""

from __future__ import annotations

from datetime import datetime

import cv2
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from app.resources import (
    current_models,
    current_preferences,
    current_settings,
    current_store,
    db_str,
    lecture_frames,
    lecture_version,
)  # fmt: skip
from app.widgets import chart, read_only_archive
from core import charts, units
from core.live import LiveAnalyser, LiveLecture
from core.privacy import blur_frame, thumbnails_dir

REFRESH_S = 2.0

st.title("Live camera")
if read_only_archive("a live session"):
    st.stop()
prefs = current_preferences()
settings = current_settings()
st.caption(
    "Press START and allow the camera. The class is analysed at about "
    f"{units.rate(settings.fps)}{' (attention only)' if settings.attention_only else ''}; "
    "the numbers are saved as a live lecture, which appears on the Home page when you press STOP. "
    "No video is recorded."
)
if not prefs.ice_servers:
    st.caption("Connection: this computer only (no STUN/TURN server). Add one in Settings & privacy for remote use.")

live = st.session_state.get("live")
if live is None or (live["lecture"] is not None and live["lecture"].closed):
    live = {"analyser": LiveAnalyser(current_models(settings), settings), "lecture": None}
    st.session_state["live"] = live
analyser: LiveAnalyser = live["analyser"]

ctx = webrtc_streamer(
    key="classlens-live",
    mode=WebRtcMode.SENDRECV,
    rtc_configuration=prefs.rtc_configuration(),
    video_frame_callback=analyser.recv,
    # 15 frames/s is plenty for a classroom and leaves CPU for the models (aiortc codes video in-process).
    media_stream_constraints={"video": {"frameRate": {"ideal": 15, "max": 15}}, "audio": False},
    async_processing=True,
)

snap = st.button(
    "Snapshot (blurred still)", disabled=not prefs.keep_thumbnails,
    help="Saves the current picture with every face blurred. Needs 'keep thumbnails' in Settings & privacy.",
)  # fmt: skip
status_box = st.empty()


@st.fragment(run_every=REFRESH_S)
def live_panel(lecture: LiveLecture) -> None:
    """Every REFRESH_S: append what the models finished to DuckDB, then redraw rates and charts."""
    lecture.flush(analyser)
    s = analyser.stats
    st.markdown(
        f"**{lecture.name}** · video {s.video_fps():.1f} frames/s · models {s.model_fps():.1f} frames/s "
        f"({s.model_ms():.0f} ms per frame) · {lecture.observations} observations saved"
        + (f" · last error: {s.last_error}" if s.last_error else "")
    )
    if lecture.observations:
        frames = lecture_frames(
            db_str(), lecture.lecture_id, lecture_version(lecture.lecture_id), settings.attention_only
        )
        # Engagement is scored when the lecture stops; while it runs, presence is what is known.
        chart(charts.presence_timeline(frames.per_student_bin))
        if frames.has_emotions:
            chart(charts.emotion_distribution(frames.emotions_over_time))


playing = ctx.state.playing
if playing:
    if live["lecture"] is None:
        live["lecture"] = LiveLecture(current_store(), settings)
        analyser.start()
    lecture: LiveLecture = live["lecture"]
    if snap:
        rgb = analyser.latest_frame()
        if rgb is not None:
            folder = thumbnails_dir(db_str(), lecture.lecture_id)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"snapshot-{datetime.now():%H%M%S}.jpg"
            still = blur_frame(rgb, analyser.latest_heads())
            cv2.imwrite(str(path), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
            status_box.success(f"Saved a blurred snapshot: {path.name}")
    live_panel(lecture)

lecture = live["lecture"]
if not playing and lecture is not None and not lecture.closed:
    with st.spinner("Saving the live lecture…"):
        outcome = lecture.close(analyser)
    st.session_state["lecture_id"] = lecture.lecture_id
    if outcome == "no_faces":
        st.warning(f"{lecture.name}: no student was seen, so the lecture holds no observations.")
    else:
        st.success(f"Saved {lecture.name}: {lecture.observations} observations. Open it on the Dashboard.")
    s = analyser.stats
    st.caption(
        f"Video {s.video_fps():.1f} frames/s · models {s.model_fps():.1f} frames/s ({s.model_ms():.0f} ms per frame)"
    )
elif not playing:
    st.info("Camera off. If the browser blocked the camera, allow it in the address bar and press START again.")
