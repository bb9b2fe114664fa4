"""Peer side-by-side: the offline `fer` package (MTCNN + mini-Xception) on the same clip as bench.speed.

    /tmp/fervenv/bin/python bench/fer_peer.py --video PATH [--fps 1] [--seconds N] [--threads 1]

Runs in its own virtual environment, never the project's: it does not import `core` (fer needs
TensorFlow, which stays out of .venv). Create that venv once (torch/torchvision as in .venv, since
the CUDA torchvision wheel does not load on the +cpu torch build; setuptools<81 keeps the
pkg_resources that fer imports):

    python3.11 -m venv /tmp/fervenv
    /tmp/fervenv/bin/pip install fer==25.10.3 torch==2.14.1 torchvision==0.29.1 "setuptools<81" av

In one run, on the video's first --seconds: decode-only time with PyAV (every frame, no
conversion; before and after the analysis, averaged), then fer's analysis of the same span:
decode, keep --fps frames per second, and FER(mtcnn=True).detect_emotions on each kept frame
(BGR, as fer expects; fer hands that BGR array to facenet's MTCNN, which was trained on RGB, at
MTCNN's default thresholds), counting faces. The first kept frame's warm-up is timed; --threads
sets torch and TensorFlow, not the TFLite interpreter fer builds itself. fer ships its weights (and
facenet-pytorch its MTCNN ones): nothing is downloaded. The CPU may be shared: compare the ratio, not absolute seconds.
The last stdout line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from importlib.metadata import version
from pathlib import Path

import av
import facenet_pytorch  # noqa: F401  before TensorFlow: tensorflow then torchvision segfaults (triton LLVM clash)
import torch


def frames(path: Path, seconds: float):  # type: ignore[no-untyped-def]
    """Decoded PyAV frames of the first `seconds` (threaded decode, like core.video)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= seconds:
                return
            yield frame


def decode_only(path: Path, seconds: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = sum(1 for _ in frames(path, seconds))
    return time.perf_counter() - t0, n


def fer_analysis(path: Path, seconds: float, fps: float) -> tuple[float, list[int]]:
    """Wall seconds (decode + sampling + fer) and faces found per sampled frame; model load not timed."""
    from fer.fer import FER  # 25.10.3 no longer re-exports FER from fer (its README still says so)

    detector = FER(mtcnn=True)
    t0 = time.perf_counter()
    faces: list[int] = []
    next_t = 0.0
    for frame in frames(path, seconds):
        if frame.time is None or frame.time + 1e-6 < next_t:
            continue
        next_t += 1 / fps
        faces.append(len(detector.detect_emotions(frame.to_ndarray(format="bgr24"))))
    return time.perf_counter() - t0, faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, required=True)
    ap.add_argument("--fps", type=float, default=1.0, help="sampled frames per video second")
    ap.add_argument("--seconds", type=float, default=60.0, help="analyse the first N seconds")
    ap.add_argument("--threads", type=int, default=1, help="torch and TensorFlow threads (.venv default: 1)")
    args = ap.parse_args()

    import tensorflow as tf

    torch.set_num_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    decode_before, n_decoded = decode_only(args.video, args.seconds)
    analysis_s, faces = fer_analysis(args.video, args.seconds, args.fps)
    decode_after, _ = decode_only(args.video, args.seconds)
    decode_s = (decode_before + decode_after) / 2
    with av.open(str(args.video)) as container:
        video_s = min(args.seconds, (container.duration or 0) / av.time_base)

    out = {
        "video": str(args.video),
        "video_s": round(video_s, 2),
        "frames_decoded": n_decoded,
        "decode_s": round(decode_s, 2),
        "decode_s_before_after": [round(decode_before, 2), round(decode_after, 2)],
        "analysis_s": round(analysis_s, 2),
        "ratio": round(analysis_s / decode_s, 2),
        "realtime_factor": round(video_s / analysis_s, 2),
        "fps": args.fps,
        "frames_sampled": len(faces),
        "faces_per_frame": round(sum(faces) / max(len(faces), 1), 2),
        "faces_min_max": [min(faces, default=0), max(faces, default=0)],
        "s_per_sampled_frame": round(analysis_s / max(len(faces), 1), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": args.threads,
        "fer_version": version("fer"),
        "tensorflow_version": tf.__version__,
        "detector": f"facenet-pytorch {version('facenet-pytorch')} MTCNN (fer defaults) + fer mini-Xception TFLite",
    }
    rows = [
        ("video span", f"{video_s:.1f} s, {n_decoded} frames"),
        (
            "decode only (PyAV, every frame)",
            f"{decode_s:.2f} s (before {decode_before:.2f} / after {decode_after:.2f})",
        ),
        (f"fer analysis ({args.fps:g} fps sampled)", f"{analysis_s:.2f} s, {out['s_per_sampled_frame']} s/frame"),
        ("ratio analysis / decode", f"{out['ratio']}x"),
        ("realtime factor", f"{out['realtime_factor']}x  (video s per wall s)"),
        (
            "faces per sampled frame",
            f"{out['faces_per_frame']} (min {out['faces_min_max'][0]}, max {out['faces_min_max'][1]})",
        ),
        ("peak RSS", f"{out['peak_rss_mb']} MB"),
        ("fer / detector", f"{out['fer_version']} / {out['detector']}"),
    ]
    for name, value in rows:
        print(f"{name:<34} {value}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
