"""Video input: sampled RGB frames with PTS timestamps (PyAV), or a still image as one frame.

Timestamps come from each frame's presentation time, so variable-frame-rate files are sampled at
true times; rotation metadata (display matrix) is applied so faces are upright.

Bounded memory: an image or frame over `MAX_FRAME_PIXELS` is analysed downscaled to fit (and its
size is reported downscaled, so boxes and sizes agree); one over `MAX_IMAGE_PIXELS` is refused
before it is decoded. Images are read from their header first, so a decompression bomb never
reaches the decoder.
"""

from __future__ import annotations

import io
import logging
import math
import queue
import threading
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import av
import cv2
import numpy as np

from core.errors import UnreadableImage, UnreadableVideo

T = TypeVar("T")

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_IMAGE_PIXELS = 300_000_000
"""Larger images or frames are refused unread: decoding one (3 bytes a pixel) would not fit the
2 GB memory budget beside the models. A 16384 x 16384 still (268 megapixels) is accepted."""
COLOUR_DECODE_PIXELS = 100_000_000
"""Above this, images other than JPEG (which decodes straight to a smaller size) are decoded in
grey: the decoder holds the full picture, 1 byte a pixel instead of 3, beside ~1.5 GB of models."""
MAX_FRAME_PIXELS = 3840 * 2160
"""Images and frames with more pixels (more than 4K UHD) are analysed downscaled to fit: the
analysis of one frame grows with its size (measured: ~1.45 GB peak for a 1280x886 photo,
~1.62 GB at 8.4 megapixels, ~1.87 GB at 16.8), and a face on such a picture stays far larger
than the detector's smallest."""


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
    """Filled while frames are read: how far decoding got and what went wrong.

    Warnings are counted, not repeated: the same message twice becomes one line with a count,
    and damaged data in many places becomes one line with the count and the time range.
    """

    decoded_frames: int = 0
    last_t: float = 0.0
    warnings: list[str] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict, repr=False)
    _damage: list[float] = field(default_factory=list, repr=False)  # count, first t, last t
    _damage_at: int = field(default=-1, repr=False)  # index of the damage line in `warnings`

    def warn(self, message: str) -> None:
        """Add a warning; an identical one already given is counted instead ("(3 times)")."""
        n = self._counts.get(message, 0) + 1
        self._counts[message] = n
        if n == 1:
            self.warnings.append(message)
        else:
            at = next(i for i, w in enumerate(self.warnings) if w == message or w.startswith(message + " ("))
            self.warnings[at] = f"{message} ({n} times)"

    def damaged(self, t: float, reason: str) -> None:
        """Note damaged data skipped near `t` seconds; kept as one warning line."""
        if not self._damage:
            self._damage = [0, t, t]
            self._damage_at = len(self.warnings)
            self.warnings.append("")
        self._damage[0] += 1
        self._damage[2] = t
        n, first, last = self._damage
        where = f"near {first:.1f} s" if n == 1 else f"in {int(n)} places between {first:.1f} s and {last:.1f} s"
        self.warnings[self._damage_at] = f"damaged data {where} skipped ({reason})"


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _check_file(path: Path) -> None:
    if not path.exists():
        raise UnreadableVideo(f"{path.name}: file not found ({path}).")
    if path.is_dir():
        raise UnreadableVideo(f"{path.name}: is a folder, not a video file.")
    if path.stat().st_size == 0:
        raise UnreadableVideo(f"{path.name}: the file is empty (0 bytes).")


def fit_size(width: int, height: int, max_pixels: int = MAX_FRAME_PIXELS) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, to at most `max_pixels` (unchanged when it fits)."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


_PIL_LIMIT_GUARD = threading.Lock()
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_REDUCED_GREY = {
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


def image_size(src: Path | bytes, name: str) -> tuple[int, int, str]:
    """(width, height, format) of an image from its header only (nothing decoded).

    Raises:
        UnreadableImage: not an image Pillow recognises, or over `MAX_IMAGE_PIXELS`.
    """
    from PIL import Image, UnidentifiedImageError

    # Pillow refuses large images by a process-wide limit; ours is checked just below instead.
    with _PIL_LIMIT_GUARD, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
                width, height = im.size
                kind = str(im.format or "")
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise UnreadableImage(f"{name}: not a readable image ({_reason(exc) or 'unknown format'}).") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = old
    if width * height > MAX_IMAGE_PIXELS:
        raise UnreadableImage(
            f"{name}: {width}x{height} pixels is more than the {MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel limit."
        )
    return width, height, kind


def read_image(
    src: str | Path | bytes, name: str | None = None, max_pixels: int = MAX_FRAME_PIXELS
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an image (a file or its bytes) as upright RGB, downscaled to at most `max_pixels`.

    Returns:
        (rgb, (width, height) of the original before any downscaling); rgb is (H, W, 3) uint8.

    Raises:
        UnreadableImage: missing, a folder, empty, not an image, corrupt, or too many pixels.
    """
    if not isinstance(src, bytes):
        path = Path(src)
        name = name or path.name
        if not path.exists():
            raise UnreadableImage(f"{name}: file not found ({path}).")
        if path.is_dir():
            raise UnreadableImage(f"{name}: is a folder, not an image.")
        if path.stat().st_size == 0:
            raise UnreadableImage(f"{name}: the file is empty (0 bytes).")
    name = name or "image"
    if isinstance(src, bytes) and not src:
        raise UnreadableImage(f"{name}: the file is empty (0 bytes).")
    width, height, kind = image_size(src if isinstance(src, bytes) else Path(src), name)
    target = fit_size(width, height, max_pixels)
    # Decode at 1/2, 1/4 or 1/8 where that still covers the target (JPEG decodes smaller at once).
    factor = next((f for f in (8, 4, 2) if width // f >= target[0] and height // f >= target[1]), 1)
    grey = kind != "JPEG" and width * height > COLOUR_DECODE_PIXELS
    flag = (_REDUCED_GREY if grey else _REDUCED).get(factor, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if isinstance(src, bytes):
        bgr = cv2.imdecode(np.frombuffer(src, np.uint8), flag)
    else:
        bgr = cv2.imread(str(src), flag)
    if bgr is None or bgr.size == 0:
        raise UnreadableImage(f"{name}: not a readable image (corrupt or unsupported format).")
    h, w = bgr.shape[:2]
    if w * h > max_pixels:
        # EXIF may have turned the picture: fit the decoded (upright) size.
        bgr = cv2.resize(bgr, fit_size(w, h, max_pixels), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB if bgr.ndim == 2 else cv2.COLOR_BGR2RGB), (width, height)


def _downscale_note(name: str, original: tuple[int, int], rgb: np.ndarray) -> str:
    grey = " in grey" if original[0] * original[1] > COLOUR_DECODE_PIXELS and (rgb[..., 0] == rgb[..., 2]).all() else ""
    return (
        f"{name}: {original[0]}x{original[1]} pixels were analysed at {rgb.shape[1]}x{rgb.shape[0]}{grey} "
        f"(the {MAX_FRAME_PIXELS / 1e6:.0f}-megapixel limit)."
    )


# `probe` hands a downscaled image to the `sample_frames` that follows it, so a huge still is
# decoded once, before the analysis loads its models (the decoder's full-size buffer and the
# models are then never in memory together). One entry, taken by its first reader.
_DECODED: dict[tuple[str, int, int], tuple[np.ndarray, tuple[int, int]]] = {}
_DECODED_GUARD = threading.Lock()


def _image_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def _read_image_frame(path: Path, *, keep: bool = False) -> tuple[np.ndarray, tuple[int, int]]:
    """A still image for analysis (UnreadableVideo on failure); `keep` leaves a downscaled one
    for the next call."""
    try:
        key = _image_key(path)
        with _DECODED_GUARD:
            cached = _DECODED.pop(key, None)
        if cached is not None:
            return cached
        rgb, original = read_image(path)
    except UnreadableImage as exc:
        raise UnreadableVideo(str(exc)) from exc
    if keep and rgb.shape[0] * rgb.shape[1] < original[0] * original[1]:
        with _DECODED_GUARD:
            _DECODED.clear()
            _DECODED[key] = (rgb, original)
    return rgb, original


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
        rgb, _ = _read_image_frame(path, keep=True)
        return VideoInfo(path, 0.0, 1.0, rgb.shape[1], rgb.shape[0], 0, "image", is_image=True)
    with _open(path) as container:
        stream = container.streams.video[0]
        if (stream.width or 0) * (stream.height or 0) > MAX_IMAGE_PIXELS:
            raise UnreadableVideo(
                f"{path.name}: {stream.width}x{stream.height} pixels a frame is more than the "
                f"{MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel limit."
            )
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
        w, h = fit_size(stream.width, stream.height)  # the size frames are analysed at
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
            rgb, original = _read_image_frame(path)
            if rgb.shape[0] * rgb.shape[1] < original[0] * original[1]:
                report.warn(_downscale_note(path.name, original, rgb))
            report.decoded_frames = 1
            yield Frame(0, 0.0, rgb)
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
                    report.damaged(report.last_t, _reason(exc))
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
                    fw, fh = fit_size(frame.width, frame.height)
                    if (fw, fh) != (frame.width, frame.height):
                        # Scaled while converting, so the full-size RGB frame never exists.
                        rgb = frame.reformat(width=fw, height=fh, format="rgb24", interpolation="AREA").to_ndarray()
                        note = (
                            f"{path.name}: {frame.width}x{frame.height} frames were analysed at {fw}x{fh} "
                            f"(the {MAX_FRAME_PIXELS / 1e6:.0f}-megapixel limit)."
                        )
                        if note not in report.warnings:
                            report.warn(note)
                    else:
                        rgb = frame.to_ndarray(format="rgb24")
                    yield Frame(index, t, _upright(rgb, int(frame.rotation or 0) % 360))
        except av.error.FFmpegError as exc:
            if report.decoded_frames == 0:
                raise UnreadableVideo(f"{path.name}: no frame could be decoded ({_reason(exc)}).") from exc
            report.warn(
                f"{path.name}: decoding stopped at {report.last_t:.1f} s ({_reason(exc)}); "
                "the file looks truncated or damaged, the part before was analysed."
            )
            return
    if report.decoded_frames == 0:
        raise UnreadableVideo(f"{path.name}: the video track holds no decodable frame.")
    if info.duration_s > 0 and report.last_t + max(1.0, 2.0 / info.frame_rate) < info.duration_s * 0.98:
        report.warn(
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
