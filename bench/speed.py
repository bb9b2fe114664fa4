"""Speed, memory and accuracy of a lecture analysis against the decode-only floor (not a test).

    python -m bench.speed --minutes 10 [--reference-seconds 8] [--no-reference]

On one generated lecture (bench.make_lecture: 1280x720, 25 fps H.264, 20 real faces) it measures,
in one run: decode-only time with PyAV (every frame, no conversion: the floor no analysis can
beat), the ClassLens analysis at the default settings in a child process (wall time, time per
stage, peak RSS from getrusage, RSS while it runs), their ratio and the realtime factor. Then, on
the lecture's first `--reference-seconds`, it compares with a slow reference (MTCNN at full
resolution, detecting on every frame) the default analysis and MTCNN at the default sampling: faces
found per frame, and per matched face (same frame, box IoU >= 0.5) the agreement of the dominant
emotion, the mean |difference| of the emotion probabilities and of the attention score.

The lecture is a synthetic mosaic of pasted real faces (no bodies, no classroom motion): use it
for speed and memory only. Its accuracy figures are synthetic; judge accuracy on real footage
with `python -m bench.accuracy`, and report both for every speed change.
The CPU may be shared: compare ratios measured in the same run, not absolute seconds across runs.
The last stdout line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.make_lecture import CACHE, expected_faces, make_lecture

ROOT = Path(__file__).resolve().parent.parent


# -- child process: one analysis, measured from the inside ----------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: a child's ru_maxrss keeps the RSS of the
    parent it was forked from, so it would count the benchmark's own process."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def child(video: str, db: str, overrides: str) -> None:
    """Load models, analyse `video` into `db` with Settings(**overrides); print one JSON line."""
    from core.pipeline import analyze, load_models
    from core.settings import Settings
    from core.store import Store

    settings = Settings(**json.loads(overrides))
    t0 = time.perf_counter()
    models = load_models(settings)
    load_s = time.perf_counter() - t0
    rss_after_load = _rss_mb()
    samples: list[tuple[float, float, float]] = []  # (fraction done, wall s, RSS MB)
    start = time.perf_counter()

    def progress(frac: float, _msg: str) -> None:
        samples.append((frac, time.perf_counter() - start, _rss_mb()))

    store = Store(db)
    result = analyze(video, store, settings, models=models, progress=progress)
    wall = time.perf_counter() - start
    faces = int(store.query_df("SELECT count(*) AS n FROM observations WHERE x1 IS NOT NULL")["n"][0])
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "analysis_s": wall,
                "load_s": load_s,
                "status": result.status,
                "students": result.students,
                "observations": result.observations,
                "faces": faces,
                "frames_sampled": result.frames_sampled,
                "stage_seconds": result.stage_seconds,
                "peak_rss_mb": peak,
                "rss_after_load_mb": rss_after_load,
                "samples": samples,
            }
        )
    )


def run_child(video: Path, db: Path, **overrides: object) -> dict:
    cmd = [sys.executable, "-m", "bench.speed", "--child", str(video), str(db), json.dumps(overrides)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"analysis failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- accuracy ----------------------------------------------------------------------------------------
def _observations(db: Path):  # type: ignore[no-untyped-def]
    from core.faces import EMOTIONS
    from core.store import Store

    cols = ", ".join(f"p_{e}" for e in EMOTIONS)
    return Store(db).query_df(
        f"SELECT frame_index, x1, y1, x2, y2, {cols}, attention FROM observations WHERE x1 IS NOT NULL "
        "ORDER BY frame_index"
    )


def agreement(test_db: Path, ref_db: Path) -> dict[str, float]:
    """Faces and per-face values of `test_db` against `ref_db` on the frames both sampled."""
    from bench.accuracy import iou_pairs
    from core.faces import EMOTIONS

    test, ref = _observations(test_db), _observations(ref_db)
    pcols = [f"p_{e}" for e in EMOTIONS]
    frames = sorted(set(test["frame_index"]))
    ref_by = dict(tuple(ref.groupby("frame_index")))
    test_by = dict(tuple(test.groupby("frame_index")))
    n_test = n_ref = matched = same_emotion = 0
    dprob: list[float] = []
    datt: list[float] = []
    for f in frames:
        a = test_by.get(f)
        b = ref_by.get(f)
        if b is None:
            continue  # the reference holds every frame; a missing one had no face there
        n_test += len(a)
        n_ref += len(b)
        boxes_a, boxes_b = a[["x1", "y1", "x2", "y2"]].to_numpy(float), b[["x1", "y1", "x2", "y2"]].to_numpy(float)
        for i, j in iou_pairs(boxes_a, boxes_b, min_iou=0.5):
            matched += 1
            pa, pb = a.iloc[i][pcols].to_numpy(float), b.iloc[j][pcols].to_numpy(float)
            same_emotion += int(np.argmax(pa) == np.argmax(pb))
            dprob.append(float(np.abs(pa - pb).mean()))
            att_a, att_b = a.iloc[i]["attention"], b.iloc[j]["attention"]
            if att_a == att_a and att_b == att_b:  # not NaN
                datt.append(abs(float(att_a) - float(att_b)))
    return {
        "frames": len(frames),
        "faces_per_frame": n_test / max(1, len(frames)),
        "ref_faces_per_frame": n_ref / max(1, len(frames)),
        "recall": matched / max(1, n_ref),
        "precision": matched / max(1, n_test),
        "emotion_agreement": same_emotion / max(1, matched),
        "emotion_prob_mae": float(np.mean(dprob)) if dprob else float("nan"),
        "attention_mae": float(np.mean(datt)) if datt else float("nan"),
    }


# -- main ----------------------------------------------------------------------------------------------
def _row(name: str, value: str) -> str:
    return f"  {name:<38s} {value}"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(*argv[1:4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--reference-seconds", type=float, default=8.0, help="length of the accuracy clip")
    parser.add_argument("--no-reference", action="store_true", help="skip the accuracy comparison")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a Settings field for the main analysis"
    )
    args = parser.parse_args(argv)

    from core.video import decode_only_seconds, probe

    video = make_lecture(args.minutes, CACHE / f"lecture-{args.minutes:g}min.mp4")
    info = probe(video)
    work = Path(tempfile.mkdtemp(prefix="classlens-speed-"))
    decode_s, decoded = decode_only_seconds(video)
    from bench.accuracy import _parse_value

    overrides = {k: _parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    run = run_child(video, work / "default.duckdb", **overrides)
    decode_after_s, _ = decode_only_seconds(video)  # again: the machine may be busier now
    decode_mean = (decode_s + decode_after_s) / 2
    analysis_s = run["analysis_s"]
    video_min = info.duration_s / 60
    samples = run["samples"]
    half = [s for s in samples if s[0] <= 0.5]
    first_half_rate = half[-1][1] / max(1e-9, half[-1][0] * video_min) if half and half[-1][0] > 0 else float("nan")
    second_half_rate = (
        (samples[-1][1] - half[-1][1]) / max(1e-9, (samples[-1][0] - half[-1][0]) * video_min)
        if half and samples[-1][0] > half[-1][0]
        else float("nan")
    )
    rss_path = [round(s[2]) for s in samples[:: max(1, len(samples) // 6)]]
    out: dict[str, object] = {
        "settings": overrides,
        "minutes": round(video_min, 2),
        "video": str(video),
        "width": info.width,
        "height": info.height,
        "fps": info.frame_rate,
        "frames_decoded": decoded,
        "faces_in_picture": expected_faces(),
        "decode_s": round(decode_mean, 2),
        "decode_s_before_after": [round(decode_s, 2), round(decode_after_s, 2)],
        "analysis_s": round(analysis_s, 2),
        "ratio": round(analysis_s / decode_mean, 2),
        "realtime_factor": round(info.duration_s / analysis_s, 2),
        "analysis_s_per_video_min": round(analysis_s / video_min, 2),
        "first_half_s_per_video_min": round(first_half_rate, 2),
        "second_half_s_per_video_min": round(second_half_rate, 2),
        "load_s": round(run["load_s"], 2),
        "stage_seconds": run["stage_seconds"],
        "peak_rss_mb": round(run["peak_rss_mb"]),
        "rss_after_load_mb": round(run["rss_after_load_mb"]),
        "rss_during_mb": rss_path,
        "frames_sampled": run["frames_sampled"],
        "observations": run["observations"],
        "students": run["students"],
        "faces_per_frame": round(run["faces"] / max(1, run["frames_sampled"]), 2),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }

    if not args.no_reference:
        clip = make_lecture(args.reference_seconds / 60, CACHE / f"lecture-{args.reference_seconds:g}s.mp4")
        clip_info = probe(clip)
        runs = {
            "default": run_child(clip, work / "clip-default.duckdb"),
            "mtcnn": run_child(clip, work / "clip-mtcnn.duckdb", detector="mtcnn"),
            "reference": run_child(
                clip, work / "clip-ref.duckdb", detector="mtcnn", detect_max_side=0, fps=clip_info.frame_rate,
            ),
        }  # fmt: skip
        out["reference"] = {
            "clip_s": round(clip_info.duration_s, 2),
            "what": "MTCNN, full resolution, every frame (synthetic mosaic: speed bench only)",
            "seconds": {k: round(v["analysis_s"], 1) for k, v in runs.items()},
            "default_vs_reference": agreement(work / "clip-default.duckdb", work / "clip-ref.duckdb"),
            "mtcnn_vs_reference": agreement(work / "clip-mtcnn.duckdb", work / "clip-ref.duckdb"),
        }

    st = out["stage_seconds"]
    assert isinstance(st, dict)
    print(
        f"ClassLens speed on {video.name}: {out['minutes']} min, {info.width}x{info.height} "
        f"@ {info.frame_rate:g} fps, {expected_faces()} faces in the picture "
        f"(load average {out['load_avg_1min']} on {os.cpu_count()} CPUs)"
    )
    rows = [
        (
            "decode only (PyAV, every frame)",
            f"{decode_mean:.1f} s (before {decode_s:.1f} / after {decode_after_s:.1f})",
        ),
        ("analysis, default settings", f"{analysis_s:.1f} s  (+ {out['load_s']} s loading models)"),
        ("ratio analysis / decode", f"{out['ratio']}x   (target <= 5x, issue 15)"),
        ("realtime factor", f"{out['realtime_factor']}x  (video s per wall s)"),
        (
            "analysis s per video minute",
            f"{out['analysis_s_per_video_min']} (1st half {out['first_half_s_per_video_min']}, "
            f"2nd half {out['second_half_s_per_video_min']})",
        ),
    ]
    rows += [(f"  stage {k}", f"{v:.1f} s ({100 * v / max(analysis_s, 1e-9):.0f}%)") for k, v in st.items()]
    rows += [
        ("peak RSS", f"{out['peak_rss_mb']} MB (after loading {out['rss_after_load_mb']} MB; during {rss_path})"),
        (
            "frames sampled / faces per frame",
            f"{out['frames_sampled']} / {out['faces_per_frame']}  ({out['students']} students)",
        ),
    ]
    for name, value in rows:
        print(_row(name, value))
    if "reference" in out:
        ref = out["reference"]
        assert isinstance(ref, dict)
        print(f"Accuracy on the first {ref['clip_s']} s against {ref['what']} (seconds: {ref['seconds']}):")
        for name in ("default_vs_reference", "mtcnn_vs_reference"):
            a = ref[name]
            value = (
                f"faces/frame {a['faces_per_frame']:.2f} vs {a['ref_faces_per_frame']:.2f}, "
                f"recall {a['recall']:.3f}, precision {a['precision']:.3f}, "
                f"emotion agreement {a['emotion_agreement']:.3f}, |dp| {a['emotion_prob_mae']:.4f}, "
                f"|d attention| {a['attention_mae']:.3f}"
            )
            print(_row(name.replace("_vs_reference", ""), value))
    print(json.dumps(_finite(out)))


def _finite(value: object) -> object:
    """NaN -> None, so the closing line is strict JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    main()
