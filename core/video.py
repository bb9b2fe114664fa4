"""Video input: sampled RGB frames with PTS timestamps (PyAV), or a still image as one frame.

Timestamps come from each frame's presentation time, so variable-frame-rate files are sampled at
true times; rotation metadata (display matrix) is applied so faces are upright.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import av
import cv2
import numpy as np

from core.errors import UnreadableVideo

T = TypeVar("T")

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class VideoInfo:
    """What a file is, read from its header (and, for images, its pixels).

    Attributes:
        duration_s: container duration in seconds (0 for a still image).
        frame_rate: average frames per second as declared (1 for an image).
        width, height: upright size in pixels (rotation applied).
        rotation: degrees counter-clockwise the stored frames must be turned to be upright.
    """

    path: Path
    duration_s: float
    frame_rate: float
    width: int
    height: int
    rotation: int
    codec: str
    is_image: bool = False


@dataclass(frozen=True)
class Frame:
    """One sampled frame: `index` counts decoded frames from 0, `t` is seconds from the start."""

    index: int
    t: float
    rgb: np.ndarray  # (H, W, 3) uint8, upright


@dataclass
class DecodeReport:
    """Filled while frames are read: how far decoding got and what went wrong."""

    decoded_frames: int = 0
    last_t: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _check_file(path: Path) -> None:
    if not path.exists():
        raise UnreadableVideo(f"{path.name}: file not found ({path}).")
    if path.is_dir():
        raise UnreadableVideo(f"{path.name}: is a folder, not a video file.")
    if path.stat().st_size == 0:
        raise UnreadableVideo(f"{path.name}: the file is empty (0 bytes).")


def _read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UnreadableVideo(f"{path.name}: not a readable image (corrupt or unsupported format).")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise UnreadableVideo(f"{path.name}: not a video file that can be read ({_reason(exc)}).") from exc
    if not container.streams.video:
        container.close()
        raise UnreadableVideo(f"{path.name}: the file has no video track (audio only or data).")
    return container


def _reason(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return msg.split(":")[-1].strip() if "]" in msg else msg


def probe(path: str | Path) -> VideoInfo:
    """Read a file's header.

    Raises:
        UnreadableVideo: missing, empty, not a video or image, or without a video track.
    """
    path = Path(path)
    _check_file(path)
    if _is_image(path):
        rgb = _read_image(path)
        return VideoInfo(path, 0.0, 1.0, rgb.shape[1], rgb.shape[0], 0, "image", is_image=True)
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        else:
            duration = 0.0
        rotation = 0
        try:
            first = next(container.decode(stream))
            rotation = int(first.rotation or 0) % 360
        except (StopIteration, av.error.FFmpegError) as exc:
            raise UnreadableVideo(f"{path.name}: no frame could be decoded ({_reason(exc)}).") from exc
        w, h = stream.width, stream.height
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(path, duration, rate, w, h, rotation, stream.codec_context.name)


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    # PyAV's frame.rotation is the counter-clockwise angle to apply for display.
    if rotation == 90:
        return cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if rotation == 180:
        return cv2.rotate(rgb, cv2.ROTATE_180)
    if rotation == 270:
        return cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    return rgb


def sample_frames(
    path: str | Path,
    fps: float,
    *,
    after_t: float = -1.0,
    report: DecodeReport | None = None,
) -> Iterator[Frame]:
    """Yield about `fps` frames per second of video, at their presentation times.

    The first frame of each 1/fps slot is taken. Frames at or before `after_t` are decoded but
    skipped (used to resume). A decoding error part-way (a truncated or damaged file) ends the
    iteration and is recorded in `report.warnings`; an error before any frame raises.

    Raises:
        UnreadableVideo: the file cannot be opened or no frame at all decodes.
    """
    path = Path(path)
    report = report if report is not None else DecodeReport()
    _check_file(path)
    if _is_image(path):
        if after_t < 0:
            report.decoded_frames = 1
            yield Frame(0, 0.0, _read_image(path))
        return
    if fps <= 0:
        raise ValueError("fps must be positive")
    info = probe(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = stream.start_time * stream.time_base if stream.start_time is not None else 0
        last_slot = -1
        index = -1
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as exc:
                    # A damaged packet: ffmpeg conceals it; keep going.
                    report.warnings.append(f"damaged data near {report.last_t:.1f} s skipped ({_reason(exc)})")
                    continue
                for frame in frames:
                    index += 1
                    if frame.pts is None:
                        t = index / info.frame_rate
                    else:
                        t = max(0.0, float(frame.pts * frame.time_base - start))
                    report.decoded_frames = index + 1
                    report.last_t = t
                    slot = math.floor(t * fps + 1e-6)
                    if slot <= last_slot:
                        continue
                    last_slot = slot
                    if t <= after_t:
                        continue
                    rgb = frame.to_ndarray(format="rgb24")
                    yield Frame(index, t, _upright(rgb, int(frame.rotation or 0) % 360))
        except av.error.FFmpegError as exc:
            if report.decoded_frames == 0:
                raise UnreadableVideo(f"{path.name}: no frame could be decoded ({_reason(exc)}).") from exc
            report.warnings.append(
                f"{path.name}: decoding stopped at {report.last_t:.1f} s ({_reason(exc)}); "
                "the file looks truncated or damaged, the part before was analysed."
            )
            return
    if report.decoded_frames == 0:
        raise UnreadableVideo(f"{path.name}: the video track holds no decodable frame.")
    if info.duration_s > 0 and report.last_t + max(1.0, 2.0 / info.frame_rate) < info.duration_s * 0.98:
        report.warnings.append(
            f"{path.name}: only {report.last_t:.1f} s of {info.duration_s:.1f} s could be decoded; "
            "the file looks truncated, the part before was analysed."
        )


def prefetch(items: Iterator[T], depth: int = 4) -> Generator[T, None, None]:
    """Iterate `items` (e.g. `sample_frames`) in a background thread, up to `depth` items ahead.

    Decoding then overlaps the analysis of earlier frames: PyAV releases the GIL while it
    decodes and converts, so on two cores the decode time mostly disappears from the wall time.
    Exceptions of `items` are raised here, in order; leaving the loop early stops the thread.
    """
    q: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((False, item)):
                    break
        except BaseException as exc:  # handed to the consumer
            put((True, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            put((True, None))

    worker = threading.Thread(target=produce, name="classlens-decode", daemon=True)
    worker.start()
    try:
        while True:
            done, value = q.get()
            if done:
                if value is not None:
                    raise value  # type: ignore[misc]
                return
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=10)


def decode_only_seconds(path: str | Path) -> tuple[float, int]:
    """Wall seconds to decode every frame (no conversion): the floor for any analysis."""
    import time

    t0 = time.perf_counter()
    n = 0
    with _open(Path(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            n += 1
    return time.perf_counter() - t0, n
