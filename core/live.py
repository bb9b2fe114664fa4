"""Live camera analysis: newest frame in, newest results out, observations to DuckDB (no Streamlit).

Three threads meet here (streamlit-webrtc's design):

- the video thread calls `LiveAnalyser.recv(frame)` for every camera frame: it only stores the
  frame as the newest one (older unprocessed frames are dropped: latest frame wins) and draws
  the latest known boxes, so the picture stays smooth whatever the models cost;
- a worker thread (`LiveAnalyser.start`) takes the newest frame at most `sample_fps` times a
  second and runs the same `core.vision.frame.FrameAnalyser` as recorded lectures on it
  (students, ids, faces, head pose and eyes, emotion, body state);
- the page's main loop calls `LiveLecture.flush()` which drains the finished observations under
  the lock and appends them to DuckDB (the one writer), and `close()` when the camera stops.

Identity (roster matching) is not run live; attention is computed when the lecture is closed
(its "front" direction is learnt from the whole session, as for recorded lectures).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import av
import cv2
import numpy as np
import torch

from core.pipeline import Models, finish_lecture
from core.settings import Settings
from core.store import Store
from core.vision.frame import FrameAnalyser
from core.vision.records import StudentObservation

log = logging.getLogger(__name__)


@dataclass
class LiveStats:
    """Counters for the frame rate (video thread) and model rate (worker) of a session."""

    started: float = field(default_factory=time.monotonic)
    frames_in: int = 0
    frames_analysed: int = 0
    model_seconds: float = 0.0
    first_frame_at: float | None = None
    stopped_at: float | None = None
    last_error: str | None = None

    def video_fps(self, now: float | None = None) -> float:
        if self.first_frame_at is None or self.frames_in < 2:
            return 0.0
        return (self.frames_in - 1) / max(1e-6, (now or self.stopped_at or time.monotonic()) - self.first_frame_at)

    def model_fps(self, now: float | None = None) -> float:
        if self.first_frame_at is None:
            return 0.0
        return self.frames_analysed / max(1e-6, (now or self.stopped_at or time.monotonic()) - self.first_frame_at)

    def model_ms(self) -> float:
        """Mean model time per analysed frame (its inverse is the model's capacity in frames/s)."""
        return 1000 * self.model_seconds / self.frames_analysed if self.frames_analysed else 0.0


class LiveAnalyser:
    """Per viewer: hands camera frames to a model worker and results back, thread-safely.

    Args:
        models: shared loaded models (pose model, face detector, per-face models).
        settings: tracker settings and `fps` (observations per second, as for recorded lectures).
        clock: time source (seconds), injectable for tests.
    """

    def __init__(self, models: Models, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.sample_interval = 1.0 / settings.fps
        self._clock = clock
        self._t0: float | None = None
        self._lock = threading.Lock()
        self._new_frame = threading.Condition(self._lock)
        self._latest: tuple[np.ndarray, int, float] | None = None
        self._last_rgb: np.ndarray | None = None
        self._overlay: list[StudentObservation] = []
        self._pending: list[StudentObservation] = []
        self._new_students: dict[int, float] = {}
        self._labels: dict[int, str] = {}
        self._frame_counter = 0
        self._last_sample_t = -1e9
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = FrameAnalyser(models, settings, identify=False)
        self.stats = LiveStats()

    # -- video thread --------------------------------------------------------------------------
    def recv(self, frame: av.VideoFrame) -> av.VideoFrame:
        """streamlit-webrtc's frame callback: keep the newest frame, return it with the last boxes."""
        rgb = frame.to_ndarray(format="rgb24")
        now = self._clock()
        with self._lock:
            if self._t0 is None:
                self._t0 = now
                self.stats.first_frame_at = time.monotonic()
            self._latest = (rgb, self._frame_counter, now - self._t0)
            self._last_rgb = rgb
            self._frame_counter += 1
            self.stats.frames_in += 1
            overlay = list(self._overlay)
            labels = dict(self._labels)
            self._new_frame.notify()
        out = av.VideoFrame.from_ndarray(draw_students(rgb, overlay, labels), format="rgb24")
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out

    # -- worker --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="classlens-live-models", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self.stats.stopped_at is None:
            self.stats.stopped_at = time.monotonic()
        self._stop.set()
        with self._lock:
            self._new_frame.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _work(self) -> None:
        # One intra-op thread for the live models: with more, OpenMP workers busy-wait and starve
        # the camera's video threads (aiortc) on a small CPU. Measured with Chromium's fake camera
        # on 2 shared cores: 1.1-1.8 s model time per frame with the default, 150-190 ms with one.
        # PyTorch also hands this count to threads started meanwhile (e.g. an analysis begun
        # during a live session); the previous count is restored when the camera stops.
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            while not self._stop.is_set():
                try:
                    self.step(wait_s=0.5)
                except Exception as exc:  # keep the camera running; show the message on the page
                    log.exception("live analysis failed on a frame")
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    time.sleep(0.2)
        finally:
            torch.set_num_threads(previous)

    def step(self, wait_s: float = 0.0) -> bool:
        """Analyse the newest frame if one is due (at most `fps` per second of camera time).

        Returns True when a frame was analysed.
        """
        with self._lock:
            if self._latest is None and wait_s > 0:
                self._new_frame.wait(wait_s)
            latest = self._latest
            if latest is None or latest[2] - self._last_sample_t < self.sample_interval - 1e-6:
                due = None
            else:
                due = latest
                self._latest = None
                self._last_sample_t = latest[2]
        if due is None:
            if latest is not None and wait_s > 0:
                time.sleep(min(wait_s, self.sample_interval / 4))
            return False
        rgb, index, t = due
        t0 = time.perf_counter()
        students = self.frames.analyse(rgb, index, t).students
        elapsed = time.perf_counter() - t0
        with self._lock:
            for s in students:
                assert s.track_id is not None
                if s.present and s.track_id not in self._labels:
                    self._labels[s.track_id] = f"Student {len(self._labels) + 1}"
                    self._new_students[s.track_id] = s.t
            self._overlay = [s for s in students if s.present]
            self._pending.extend(students)
            self.stats.frames_analysed += 1
            self.stats.model_seconds += elapsed
        return True

    # -- main loop thread ----------------------------------------------------------------------
    def drain(self) -> tuple[list[StudentObservation], dict[int, float], float, int]:
        """Observations finished since the last call, new students (id -> first time), the
        time of the last analysed frame and the number of analysed frames so far."""
        with self._lock:
            students, self._pending = self._pending, []
            new, self._new_students = self._new_students, {}
            return students, new, self._last_sample_t, self.stats.frames_analysed

    def latest_heads(self) -> list[tuple[float, float, float, float]]:
        """Boxes to blur in a snapshot: every visible face and every student's head region."""
        from core.vision.body import head_region

        boxes = []
        for s in self.latest_students():
            if s.face is not None:
                boxes.append(s.face.box)
            if s.box is not None and s.has_body:
                boxes.append(head_region(s.keypoints, s.box))
        return boxes

    def latest_students(self) -> list[StudentObservation]:
        with self._lock:
            return list(self._overlay)

    def latest_frame(self) -> np.ndarray | None:
        """The newest camera frame (for a snapshot), if any arrived."""
        with self._lock:
            return None if self._last_rgb is None else self._last_rgb.copy()


def draw_students(rgb: np.ndarray, students: list[StudentObservation], labels: dict[int, str]) -> np.ndarray:
    """A copy of the frame with each student's box and label, their face box and top emotion."""
    out = np.ascontiguousarray(rgb).copy()
    for s in students:
        box = s.box if s.box is not None else (s.face.box if s.face is not None else None)
        if box is None:
            continue
        x1, y1, x2, y2 = (round(v) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (59, 111, 216), 2)
        text = labels.get(s.track_id or -1, "student")
        if s.face is not None:
            fx1, fy1, fx2, fy2 = (round(v) for v in s.face.box)
            cv2.rectangle(out, (fx1, fy1), (fx2, fy2), (255, 196, 0), 1)
            dom = s.face.dominant_emotion
            if dom is not None:
                text += f" {dom[0]} {dom[1]:.0%}"
        if s.hand_raised:
            text += " hand up"
        elif s.head_down:
            text += " head down"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - 8)
        cv2.rectangle(out, (x1, top), (x1 + tw + 6, top + th + 8), (59, 111, 216), -1)
        cv2.putText(out, text, (x1 + 3, top + th + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class LiveLecture:
    """The database side of a live session: a lecture with source='live', appended as it goes.

    Args:
        store: the database.
        settings: stored with the lecture; `fps` is the live sampling rate.
        name: lecture name (default "Live camera <date time>").
    """

    def __init__(self, store: Store, settings: Settings, name: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.name = name or f"Live camera {datetime.now():%Y-%m-%d %H:%M}"
        self.lecture_id = store.create_lecture(
            self.name,
            None,
            settings_key=settings.analysis_key(),
            sample_fps=settings.fps,
            source="live",
        )
        store.claim(self.lecture_id)  # running, with this process's heartbeat
        self.last_t = -1.0
        self.frames = 0
        self.observations = 0
        self.closed = False

    def flush(self, analyser: LiveAnalyser) -> int:
        """Append what the analyser finished since the last flush; returns rows appended."""
        students, new_students, last_t, frames = analyser.drain()
        if not students and not new_students and frames == self.frames:
            self.store.heartbeat(self.lecture_id)  # the camera runs, nothing new: still alive
            return 0
        self.last_t, self.frames = max(self.last_t, last_t), frames
        self.store.append(
            self.lecture_id, students, progress_t=self.last_t, frames_sampled=frames, new_students=new_students
        )
        self.observations += len(students)
        return len(students)

    def close(self, analyser: LiveAnalyser | None = None) -> str:
        """Final flush, attention for every row, duration, then status complete / no_faces."""
        if self.closed:
            return "closed"
        if analyser is not None:
            analyser.stop()
            self.flush(analyser)
        status = finish_live_lecture(self.store, self.lecture_id, self.settings)
        self.closed = True
        return status


def finish_live_lecture(store: Store, lecture_id: int, settings: Settings, warnings: list[str] | None = None) -> str:
    """What a recorded lecture gets when it ends (`core.pipeline.finish_lecture`: pictures and noise
    dropped, labels, attention), then the duration and status complete / no_faces; returns the status."""
    finish_lecture(store, lecture_id, settings)
    lecture = store.lecture(lecture_id)
    duration = max(0.0, lecture.progress_t) + 1.0 / settings.fps if lecture.frames_sampled else 0.0
    with store.transaction() as con:
        con.execute("UPDATE lectures SET duration_s = ? WHERE lecture_id = ?", [duration, lecture_id])
    status = "complete" if store.count_students(lecture_id) else "no_faces"
    store.set_status(lecture_id, status, warnings=warnings)
    return status


def finish_abandoned_live_lectures(store: Store) -> list[int]:
    """Close live lectures whose session ended without STOP (tab closed, server stopped).

    What reached the database is kept; the lecture gets its attention scores, its duration and a
    warning, as if STOP had been pressed then. Returns the lecture ids closed.
    """
    closed = []
    for lecture_id in store.abandoned_live_lectures():
        settings = _stored_settings(store, lecture_id)
        note = "The live session ended without STOP (the tab was closed); everything received until then is kept."
        finish_live_lecture(store, lecture_id, settings, warnings=[note])
        closed.append(lecture_id)
    return closed


def _stored_settings(store: Store, lecture_id: int) -> Settings:
    """The Settings a lecture was recorded with (fields this version does not know are ignored)."""
    import json
    from dataclasses import fields

    lecture = store.lecture(lecture_id)
    known = {f.name for f in fields(Settings)}
    try:
        stored = {k: v for k, v in json.loads(lecture.settings or "{}").items() if k in known}
    except (TypeError, ValueError):
        stored = {}
    stored["fps"] = lecture.sample_fps or stored.get("fps") or Settings().fps
    return Settings(**stored)
