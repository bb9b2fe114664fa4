"""The analysis of one lecture video: frames -> faces -> tracks -> per-face models -> DuckDB.

Resumable: observations are committed every `settings.batch_frames` sampled frames together with
the time of the last sampled frame; a rerun of the same file with the same settings continues
after that point with the tracker restored from the store, so no row is duplicated or missed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from core.errors import ClassLensError
from core.faces import FaceObservation
from core.settings import Settings
from core.store import Store
from core.video import DecodeReport, Frame, prefetch, probe, sample_frames
from core.vision.detect import FaceDetector, make_detector
from core.vision.frame import FrameAnalyser
from core.vision.lecture_identity import embedding_sums
from core.vision.records import FrameResult, StudentObservation

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
"""Called with (fraction done in [0, 1], short message)."""


class FaceAnalyser(Protocol):
    """A per-face model stage: fills fields of the observations of several frames at once."""

    def analyse(self, frames: list[tuple[np.ndarray, list[FaceObservation]]]) -> list[list[FaceObservation]]: ...


@dataclass
class StageTimes:
    """Wall seconds spent per stage (for benchmarks and the progress display)."""

    decode: float = 0.0
    detect: float = 0.0  # finding and tracking the students
    analysers: float = 0.0  # the worker: face mesh, emotion, identity
    store: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


@dataclass
class AnalysisResult:
    """What one `analyze` call did."""

    lecture_id: int
    status: str  # complete | no_faces | interrupted
    students: int
    observations: int
    frames_sampled: int
    seconds: float
    reused: bool = False
    resumed_from_t: float | None = None
    warnings: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Models:
    """The loaded models a pipeline run needs (load once per process and share between runs).

    Attributes:
        detector: the face detector.
        pose_model: the people/keypoints model that finds students (models.yolo_pose.YoloPose).
        analysers: stateless per-face stages (emotion), shared by concurrent runs.
        pose_estimator: head pose / eyes estimator, or None when pose is off.
        embedder: face embedder for identity, or None when identification is off.
    """

    detector: FaceDetector
    pose_model: object
    analysers: list[FaceAnalyser]
    pose_estimator: object | None = None
    embedder: object | None = None


def load_models(settings: Settings) -> Models:
    """Detector plus per-face analysers for these settings (no emotion model in attention-only).

    Also sets torch's thread count for the process when `settings.torch_threads` > 0.
    """
    if settings.torch_threads > 0:
        import torch

        torch.set_num_threads(settings.torch_threads)
    analysers: list[FaceAnalyser] = []
    if not settings.attention_only:
        from core.vision.emotion import EmotionAnalyser
        from models.emotion import load_emotion_model

        analysers.append(EmotionAnalyser(load_emotion_model(settings.emotion_model)))
    pose_estimator = embedder = None
    if settings.pose:
        from core.vision.face_pose import default_pose_estimator

        pose_estimator = default_pose_estimator()
    if settings.identify:
        from core.vision.identity import LazyEmbedder

        embedder = LazyEmbedder()  # FaceNet is loaded when a run with a roster first needs it
    detector = make_detector(settings.detector, settings.min_face, settings.detect_max_side, settings.det_threshold)
    from models.yolo_pose import YoloPose

    pose_model = YoloPose(settings.person_side, settings.person_threshold)
    return Models(detector, pose_model, analysers, pose_estimator, embedder)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def analyze(
    video: str | Path,
    store: Store,
    settings: Settings | None = None,
    *,
    models: Models | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    display_name: str | None = None,
) -> AnalysisResult:
    """Analyse a video (or a still image as a one-frame lecture) into the store.

    Args:
        video: path of the file.
        store: the database.
        settings: analysis settings (defaults + environment when None).
        models: preloaded models (loaded here when None).
        progress: callback for progress bars.
        cancel: set it to stop after the current batch; what was analysed stays committed and a
            later call resumes.
        display_name: file name to record (e.g. the original upload name).

    Raises:
        UnreadableVideo: not a readable video or image.
        LectureBusy: the same lecture is being analysed by another live run.
        InvalidSettings: a setting is out of range or names an unknown model (nothing written).
    """
    settings = settings.validate() if settings is not None else Settings.from_env()  # before any row
    path = Path(video)
    started = time.perf_counter()
    info = probe(path)
    sha = file_sha256(path)
    key = settings.analysis_key()
    lecture, created = store.find_or_create_lecture(
        display_name or path.name, sha, settings_key=key, sample_fps=settings.fps,
        duration_s=info.duration_s, frame_rate=info.frame_rate, width=info.width, height=info.height,
    )  # fmt: skip
    if not created and lecture.status in ("complete", "no_faces"):
        return AnalysisResult(
            lecture.lecture_id, lecture.status, store.count_students(lecture.lecture_id),
            store.count_observations(lecture.lecture_id), lecture.frames_sampled,
            time.perf_counter() - started, reused=True, warnings=lecture.warnings,
        )  # fmt: skip
    lecture_id = lecture.lecture_id
    resume_t, frames_sampled = (-1.0, 0) if created else (lecture.progress_t, lecture.frames_sampled)
    store.claim(lecture_id)
    try:
        return _run(
            path, info.duration_s, store, lecture_id, settings, models or load_models(settings),
            resume_t, frames_sampled, progress, cancel, started,
        )  # fmt: skip
    except ClassLensError as exc:
        store.set_status(lecture_id, "failed", error=str(exc))
        raise
    except BaseException as exc:
        # KeyboardInterrupt, kills and bugs: what is committed stays; a rerun resumes.
        store.set_status(lecture_id, "interrupted", error=f"{type(exc).__name__}: {exc}")
        raise


def _run(
    path: Path,
    duration_s: float,
    store: Store,
    lecture_id: int,
    settings: Settings,
    models: Models,
    resume_t: float,
    frames_sampled: int,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    started: float,
) -> AnalysisResult:
    times = StageTimes()
    if resume_t >= 0:
        store.discard_after(lecture_id, resume_t)
    states, next_id, known = store.track_state(lecture_id)
    # Faces are embedded only to put roster names on students: without a roster, FaceNet (the
    # costliest model per face) does not run. Students are tracked by body, so anonymous ones
    # need no face matching to stay whole.
    identify = settings.identify and store.roster_size() > 0
    analyser = FrameAnalyser(models, settings, states, next_id, known, identify=identify)
    known_tracks = set(known)
    report = DecodeReport()
    pending: list[StudentObservation] = []
    new_students: dict[int, float] = {}
    batch_frames: list[Frame] = []
    last_t = resume_t
    cancelled = False

    # Two threads share the work: this one finds and tracks the students (each sample depends on
    # the previous one); a worker describes the faces of the previous group of frames meanwhile
    # (head pose and eyes from the face mesh, emotion, identity). Their model calls release the
    # GIL, so on two cores they overlap (decoding runs in a third, mostly idle thread).
    worker = ThreadPoolExecutor(1, thread_name_prefix="classlens-faces")
    in_flight: Future[tuple[list[FrameResult], float]] | None = None
    batch_times: list[float] = []

    def collect() -> None:
        """Wait for the worker's group and queue its observations for the store."""
        nonlocal in_flight, frames_sampled, last_t
        if in_flight is None:
            return
        results, seconds = in_flight.result()
        in_flight = None
        times.analysers += seconds
        for result in results:
            for student in result.students:
                assert student.track_id is not None
                if student.present and student.track_id not in known_tracks:
                    known_tracks.add(student.track_id)
                    new_students[student.track_id] = student.t
            pending.extend(result.students)
        frames_sampled += len(results)
        last_t = batch_times[-1]

    def flush() -> None:
        """Commit what the worker has finished (a group still in flight goes in the next one)."""
        nonlocal pending, new_students
        t0 = time.perf_counter()
        store.append(lecture_id, pending, progress_t=last_t, frames_sampled=frames_sampled, new_students=new_students)
        sums = embedding_sums([s.face for s in pending if s.face is not None])
        if sums:
            store.add_student_embeddings(lecture_id, sums)
        times.store += time.perf_counter() - t0
        pending, new_students = [], {}

    def describe(batch: list[tuple[np.ndarray, FrameResult]]) -> tuple[list[FrameResult], float]:
        t0 = time.perf_counter()
        results = analyser.describe(batch)
        return results, time.perf_counter() - t0

    def process(frames: list[Frame]) -> None:
        nonlocal in_flight, batch_times
        t0 = time.perf_counter()
        located = [analyser.locate(f.rgb, f.index, f.t) for f in frames]
        times.detect += time.perf_counter() - t0
        collect()
        batch_times = [f.t for f in frames]
        in_flight = worker.submit(describe, [(f.rgb, r) for f, r in zip(frames, located, strict=True)])

    frames_iter = prefetch(sample_frames(path, settings.fps, after_t=resume_t, report=report))
    group = 4  # frames per worker hand-off (one emotion-model call)
    since_flush = 0
    t_dec = time.perf_counter()
    try:
        for frame in frames_iter:
            times.decode += time.perf_counter() - t_dec
            batch_frames.append(frame)
            if len(batch_frames) >= group:
                process(batch_frames)
                since_flush += len(batch_frames)
                batch_frames = []
            if since_flush >= settings.batch_frames:
                flush()
                since_flush = 0
                if progress and duration_s > 0:
                    progress(min(1.0, last_t / duration_s), f"{last_t:.0f} s of {duration_s:.0f} s analysed")
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
            t_dec = time.perf_counter()
        if batch_frames and not cancelled:
            process(batch_frames)
        collect()
        flush()
    finally:
        frames_iter.close()  # stops the decode thread when the loop ends early
        worker.shutdown(wait=True)
    if not cancelled:
        t0 = time.perf_counter()
        finish_lecture(store, lecture_id, settings)
        times.store += time.perf_counter() - t0
    n_obs = store.count_observations(lecture_id)
    n_students = store.count_students(lecture_id)
    if cancelled:
        status = "interrupted"
    elif n_students == 0:
        status = "no_faces"
    else:
        status = "complete"
    warnings = list(report.warnings)
    if status == "no_faces":
        warnings.append(f"No students found in {path.name}.")
    store.set_status(lecture_id, status, warnings=warnings)
    if progress:
        progress(1.0, {"complete": "done", "no_faces": "no students found", "interrupted": "stopped"}[status])
    return AnalysisResult(
        lecture_id, status, n_students, n_obs, frames_sampled,
        time.perf_counter() - started, resumed_from_t=resume_t if resume_t >= 0 else None,
        warnings=warnings, stage_seconds=times.as_dict(),
    )  # fmt: skip


def finish_lecture(store: Store, lecture_id: int, settings: Settings) -> None:
    """After the last frame: drop what is not a student (pictures, detector noise), roster names
    and merged tracks (when faces were embedded), then attention for every row."""
    from core.vision.tracking import not_students

    lecture = store.lecture(lecture_id)
    store.delete_students(lecture_id, not_students(store.present_rows(lecture_id), lecture.frames_sampled))
    if settings.identify and store.student_embeddings(lecture_id):
        from core.vision.lecture_identity import finish_identities

        finish_identities(store, lecture_id)
    else:
        store.finish_identities(lecture_id, {}, {})  # labels "Student 1..n" by first appearance
    update_attention(store, lecture_id, settings)


def update_attention(store: Store, lecture_id: int, settings: Settings) -> None:
    """(Re)compute attention for a lecture: front learnt from the class unless set by hand."""
    from core.attention import Front, attention_scores, calibrate_front

    obs = store.query_df(
        "SELECT student_id, frame_index, t, yaw, pitch, eyes_open, p_sad, p_fear, present, face_visible, "
        "head_down, head_turned, hand_raised FROM observations WHERE lecture_id = ?",
        [lecture_id],
    )
    if obs.empty:
        return
    if settings.front_yaw is not None and settings.front_pitch is not None:
        front: Front | None = Front(settings.front_yaw, settings.front_pitch, learnt=False)
    else:
        front = calibrate_front(
            obs["yaw"].to_numpy(dtype=float, na_value=np.nan), obs["pitch"].to_numpy(dtype=float, na_value=np.nan)
        )
    obs["attention"] = pd.array(attention_scores(obs, front), dtype="Float32")  # NaN -> NULL (not present)
    store.set_attention(lecture_id, obs, None if front is None else (front.yaw, front.pitch, front.learnt))
