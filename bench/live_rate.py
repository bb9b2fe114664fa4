"""Live-page rates without a browser: real face frames pushed through `LiveAnalyser.recv` at a
camera rate, the model worker running as on the Live page.

    .venv/bin/python -m bench.live_rate [--seconds 20] [--camera-fps 30] [--fps 2]

Prints one JSON line: frames the callback returned per second (video_fps), its cost per frame
(callback_ms), frames analysed per second (model_fps, capped by --fps as on the page), model
time per analysed frame (model_ms; 1000 / model_ms is the models' capacity), and the machine's
load average (these figures depend on what else runs). `tests/test_browser.py` measures the same
on the real page with Chromium's fake camera (artifacts/live_rates.json).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import av

from core.live import LiveAnalyser
from core.pipeline import load_models
from core.settings import PROJECT_ROOT, Settings
from core.video import sample_frames


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--camera-fps", type=float, default=30.0)
    ap.add_argument("--fps", type=float, default=2.0, help="live sampling rate (the page uses Settings.fps)")
    ap.add_argument("--image", help="a still image as the camera (default: frames of the fixture clip)")
    args = ap.parse_args()
    settings = Settings(fps=args.fps)
    if args.image:
        import cv2

        frames = [cv2.cvtColor(cv2.imread(args.image), cv2.COLOR_BGR2RGB)]
    else:
        frames = [f.rgb for f in sample_frames(PROJECT_ROOT / "tests/fixtures/WolfgangLanger_Pexels.mp4", 8.0)][:60]
    live = LiveAnalyser(load_models(settings), settings)
    live.start()
    period = 1.0 / args.camera_fps
    start = time.monotonic()
    callback_s, i = 0.0, 0
    while time.monotonic() - start < args.seconds:
        t0 = time.perf_counter()
        live.recv(av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24"))
        callback_s += time.perf_counter() - t0
        i += 1
        time.sleep(max(0.0, start + i * period - time.monotonic()))
    live.stop()
    s = live.stats
    print(
        json.dumps(
            {
                "camera_fps": args.camera_fps,
                "video_fps": round(s.video_fps(), 2),
                "callback_ms": round(1000 * callback_s / max(i, 1), 2),
                "model_fps": round(s.model_fps(), 2),
                "model_ms": round(s.model_ms(), 1),
                "frames_analysed": s.frames_analysed,
                "sampling_fps": args.fps,
                "load_average_1min": round(os.getloadavg()[0], 2),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
