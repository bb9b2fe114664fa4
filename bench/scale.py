"""Scale-out of the batch analysis on Ray against `core analyze` one after another (not a test).

    python -m bench.scale [--fps 1] [--workers 1,2]

The same real clips (tests/fixtures: WolfgangLanger_Pexels.mp4, short_hamilton_clip.mp4,
face_noface.mov, and samples/sample_lecture.mp4) are analysed, in one run:

1. by `python -m core analyze CLIP` one after another (a process each: start-up and model
   loading included, as a teacher would run them), the reference;
2. by `core.batch.run_batch` on a local Ray with 1, then 2 worker actors (a fresh pool each time:
   model loading included; Ray's own start is timed apart).

It reports per run the wall time, throughput (video hours per wall hour), the speed-up against
the reference and against one worker, the peak resident memory of each worker process (sampled
from /proc while it runs) and of the largest `core analyze` process, and Ray's overhead: the
round trip of an empty actor task, and per lecture the batch's wall time not spent inside
`analyze` by a worker. The CPU may be shared: compare ratios from the same run. The last stdout
line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIPS = (
    ROOT / "tests" / "fixtures" / "WolfgangLanger_Pexels.mp4",
    ROOT / "tests" / "fixtures" / "short_hamilton_clip.mp4",
    ROOT / "tests" / "fixtures" / "face_noface.mov",
    ROOT / "samples" / "sample_lecture.mp4",
)


class _Echo:
    """An empty actor: its task round trip is Ray's fixed cost per task."""

    def ping(self) -> int:
        return 1


class _RssSampler:
    """Peak RSS (MB) of every process whose title starts with `prefix`, sampled every 0.2 s;
    processes that already had that title when sampling began (e.g. the workers of the previous
    run, still exiting) are left out."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.encode()
        self.peak: dict[int, float] = {}
        self._before: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _RssSampler:
        self._before = set(self._matching())
        self._thread.start()
        return self

    def _matching(self) -> list[Path]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "cmdline").read_bytes().startswith(self.prefix):
                        found.append(entry)
                except OSError:
                    continue
        return found

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        while not self._stop.is_set():
            for entry in self._matching():
                if entry in self._before:
                    continue
                try:
                    rss = int((entry / "statm").read_text().split()[1]) * page_mb
                except (OSError, ValueError, IndexError):
                    continue
                pid = int(entry.name)
                self.peak[pid] = max(self.peak.get(pid, 0.0), rss)
            self._stop.wait(0.2)


def sequential_cli(fps: float, tmp: Path) -> dict[str, object]:
    """Each clip through `python -m core analyze` in its own process, one after another."""
    started = time.perf_counter()
    analysis = 0.0
    for i, clip in enumerate(CLIPS):
        db = str(tmp / f"cli{i}.duckdb")
        proc = subprocess.run(
            [sys.executable, "-m", "core", "analyze", str(clip), "--db", db, "--fps", str(fps)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        analysis += float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": round(seconds, 2), "analysis_s": round(analysis, 2), "max_rss_mb": round(peak)}


def ray_task_overhead_ms(n: int = 300) -> float:
    """Mean round trip of an empty actor task (submit, run, fetch), after a warm-up."""
    import ray

    actor = ray.remote(_Echo).options(num_cpus=0).remote()
    ray.get(actor.ping.remote())
    started = time.perf_counter()
    for _ in range(n):
        ray.get(actor.ping.remote())
    ms = (time.perf_counter() - started) / n * 1000
    ray.kill(actor)
    return ms


def batch_run(workers: int, fps: float, tmp: Path) -> dict[str, object]:
    from core.batch import run_batch
    from core.settings import Settings

    with _RssSampler("ray::BatchWorker") as rss:
        summary = run_batch(
            [str(c) for c in CLIPS], str(tmp / f"ray{workers}"), settings=Settings(fps=fps), workers=workers,
            show_progress=False,
        )  # fmt: skip
    assert summary.complete == len(CLIPS), summary.as_json()
    analysis = sum(r.analysis_s for r in summary.results)
    return {
        "seconds": round(summary.seconds, 2),
        "analysis_s": round(analysis, 2),
        "overhead_per_lecture_s": round((summary.seconds * workers - analysis) / len(CLIPS), 2),
        "worker_max_rss_mb": sorted(round(v) for v in rss.peak.values()),
        "summary": summary.as_json(),
    }


def main(argv: list[str] | None = None) -> int:
    from core.batch import start_ray
    from core.video import probe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=1.0, help="samples per second (default 1, as the app)")
    ap.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    video_s = sum(probe(c).duration_s for c in CLIPS)
    hours = video_s / 3600
    out: dict[str, object] = {"clips": [c.name for c in CLIPS], "video_s": round(video_s, 2), "fps": args.fps,
                              "cpus": os.cpu_count(), "load_avg_start": round(os.getloadavg()[0], 2)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="classlens-scale-") as tmp_name:
        tmp = Path(tmp_name)
        print("core analyze, one clip after another …", file=sys.stderr)
        cli = sequential_cli(args.fps, tmp)
        cli["video_h_per_h"] = round(hours / (cli["seconds"] / 3600), 2)  # type: ignore[operator]
        out["core_analyze_sequential"] = cli
        t0 = time.perf_counter()
        start_ray(num_cpus=os.cpu_count())
        out["ray_start_s"] = round(time.perf_counter() - t0, 2)
        out["ray_task_overhead_ms"] = round(ray_task_overhead_ms(), 3)
        for n in counts:
            print(f"Ray, {n} worker(s) …", file=sys.stderr)
            run = batch_run(n, args.fps, tmp)
            run["video_h_per_h"] = round(hours / (run["seconds"] / 3600), 2)  # type: ignore[operator]
            run["speedup_vs_core_analyze"] = round(cli["seconds"] / run["seconds"], 2)  # type: ignore[operator]
            out[f"ray_{n}_workers"] = run
        base = out.get("ray_1_workers")
        for n in counts:
            if base and n != 1:
                run = out[f"ray_{n}_workers"]
                run["speedup_vs_1_worker"] = round(base["seconds"] / run["seconds"], 2)  # type: ignore[index]
    out["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
