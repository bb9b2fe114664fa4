"""One prepared GPU session: train in two stages, evaluate, package the results.

    python -m training.run_device --pack .cache/devpack/fer_ck.npz --out OUTDIR --budget 320 --budget2 150

The pack (training.datasets.pack_splits) holds FER-2013 `train`, `publictest` and CK+48
`ckplus` (contempt dropped). Stage 1 trains every config in --configs from scratch, each as its
own process on the one GPU, inside --budget seconds (cosine schedules are fitted to the budget
after timing epoch 2; --epochs caps them and any pinned stop_epoch is cleared). Stage 2
(--configs2, the kd_*.yaml / kd3_*.yaml configs) fine-tunes each stage-1 model at a tenth of its
learning rate, distilled from the mean of the stage-1 teachers its config names (vgg_l and
resnet_l; kd3_* add ft_facenet, whose start --backbone supplies), inside --budget2 seconds.
training/README.md ("Next GPU run") gives the two device calls that bring pack and backbone.
Then every run, exported to fp16 as it would ship, and a few ensembles are scored on PublicTest
and CK+ with no / flip / 10-crop TTA; the evaluate CLI runs once for real on the best single
model. OUTDIR receives results.tgz (logs, curves, confusion matrices, results.json/.md) and
weights.tar.part* (fp16 weights of the best singles, <= 15 MiB each, 58 MiB at most; never the
teacher-only facenet_fer). `--smoke` does all of it on CPU with a few images, to check the mechanics
before a GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

from training.train import load_config, point_at_runs

CONFIGS = ["vgg_l", "resnet_l", "vgg_s", "compact_s"]
CONFIGS2 = ["kd_vgg_l", "kd_resnet_l", "kd_vgg_s", "kd_compact_s"]
TEACHERS = ["vgg_l", "resnet_l", "ft_facenet"]  # the reference ensemble: those of them that ran
SMALL_ARCHS = ("fer_resnet_s", "fer_vgg:32")  # fast enough for the live page (a few ms per face)
TEACHER_ONLY_ARCHS = ("facenet_fer",)  # never shipped (45 MB; CASIA-WebFace terms): not sent back
RETURN_BYTES = 58 * 2**20


def _stage2_sets(cfg: dict, runs: Path) -> list[str] | None:
    """Overrides pointing a kd_* config at this session's stage-1 runs (the teachers that exist);
    None if its start or every teacher is missing."""
    cfg = point_at_runs(cfg, runs)
    teachers = [t for t in cfg["distill"]["teachers"] if Path(t).exists()]
    if not Path(cfg["init_from"]).exists() or not teachers:
        return None
    return ["--set", f"init_from={cfg['init_from']}", "--set", f"distill.teachers={teachers}"]


def _train_command(
    name: str,
    pack: str,
    runs: Path,
    budget: float,
    smoke: bool,
    epochs: int = 0,
    stage2: bool = False,
    backbone: str = "",
) -> list[str] | None:
    """The `training.train` command line of one run of this session; None for a stage-2 run whose
    stage-1 weights are missing. A real run is sized to the time budget: the config's pinned
    `train.stop_epoch` (a replay of an earlier session's cut-short run) is cleared, and `epochs`
    (when given) replaces the config's epoch count as the upper bound that the budget fit shrinks.
    `backbone` replaces the pretrained file of a config that starts from one (init_backbone)."""
    config = f"training/configs/{name}.yaml"
    cfg = load_config(config)
    cmd = [
        sys.executable,
        "-m",
        "training.train",
        "--config",
        config,
        "--set",
        f"data.train={pack}",
        "--set",
        f"data.val={pack}",
        "--set",
        f"out_dir={runs / name}",
        "--set",
        "train.threads=2",
    ]
    if stage2:
        extra = _stage2_sets(cfg, runs)
        if extra is None:
            return None
        cmd += extra
    if backbone and cfg["init_backbone"]["path"]:
        cmd += ["--set", f"init_backbone.path={backbone}"]
    if smoke:
        return [
            *cmd,
            "--smoke",  # out_dir is set above, and --set applies after --smoke's "_smoke" default
            "--set",
            "data.limit_per_class=4",
            "--set",
            "train.epochs=1",
            "--set",
            "train.batch_size=16",
        ]
    cmd += ["--set", f"train.time_budget_s={budget}", "--set", "train.fit_epochs_to_budget=true"]
    cmd += ["--set", "train.stop_epoch=0"]
    if epochs:
        cmd += ["--set", f"train.epochs={epochs}"]
    return cmd


def _run_training(
    configs: list[str],
    pack: str,
    runs: Path,
    budget: float,
    smoke: bool,
    stage2: bool = False,
    epochs: int = 0,
    backbone: str = "",
) -> dict[str, dict]:
    procs = {}
    summaries: dict[str, dict] = {}
    for name in configs:
        cmd = _train_command(name, pack, runs, budget, smoke, epochs, stage2, backbone)
        if cmd is None:
            summaries[name] = {"error": "stage-1 weights missing"}
            print(f"skipping {name}: its stage-1 weights are missing", flush=True)
            continue
        log = open(runs / f"{name}.log", "w")
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
        print(f"started {name}: {' '.join(cmd)}", flush=True)
    deadline = time.monotonic() + budget + 60  # a run overshoots its budget by one epoch at most
    while any(p.poll() is None for p, _ in procs.values()):
        if time.monotonic() > deadline:
            for name, (p, _) in procs.items():
                if p.poll() is None:
                    print(f"killing {name}: past its budget", flush=True)
                    p.kill()
        time.sleep(2)
    for name, (p, log) in procs.items():
        log.close()
        s = runs / name / "summary.json"
        summaries[name] = json.loads(s.read_text()) if s.exists() else {"error": f"exit {p.returncode}"}
        print(f"{name}: exit {p.returncode} {summaries[name]}", flush=True)
    return summaries


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=320.0, help="stage-1 training seconds (all runs at once)")
    ap.add_argument("--budget2", type=float, default=150.0, help="stage-2 training seconds (0 = no stage 2)")
    ap.add_argument("--configs", nargs="+", default=CONFIGS)
    ap.add_argument("--configs2", nargs="*", default=CONFIGS2)
    ap.add_argument(
        "--epochs", type=int, default=300, help="stage-1 epoch cap; the budget fit shrinks it (0 = the configs')"
    )
    ap.add_argument("--epochs2", type=int, default=60, help="stage-2 epoch cap (0 = the configs')")
    ap.add_argument(
        "--backbone",
        default="",
        help="pretrained weights for configs with init_backbone (e.g. .cache/devinit/facenet_body_fp16.pt "
        "from `python -m training.export --backbone`); default: the config's own path",
    )
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)

    import torch

    t0 = time.monotonic()
    out = Path(args.out)
    work = out / "work"
    runs, wdir, evals = work / "runs", work / "weights", work / "evals"
    for d in (runs, wdir, evals):
        d.mkdir(parents=True, exist_ok=True)
    env = {
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "cpus": os.cpu_count(),
    }
    print(env, flush=True)
    summaries = _run_training(
        args.configs, args.pack, runs, args.budget, args.smoke, epochs=args.epochs, backbone=args.backbone
    )
    t_stage1 = time.monotonic() - t0
    if args.budget2 and args.configs2:
        summaries |= _run_training(
            args.configs2, args.pack, runs, args.budget2, args.smoke, stage2=True, epochs=args.epochs2
        )
    t_train = time.monotonic() - t0
    print(f"training: stage 1 {t_stage1:.0f} s, both stages {t_train:.0f} s", flush=True)

    results: dict[str, dict] = {}
    try:
        _evaluate_all(args, runs, wdir, evals, results)
    except Exception as err:  # whatever happens, the runs' logs and checkpoints still come back
        import traceback

        traceback.print_exc()
        results["_error"] = {"error": repr(err)}
    _package(args, out, work, runs, env, summaries, results, t0, t_train)


def _arch_key(ck_path: Path) -> str:
    import torch

    ck = torch.load(ck_path, map_location="cpu", weights_only=True)
    width = ck.get("arch_kwargs", {}).get("width")
    return f"{ck['arch']}:{width}" if width else ck["arch"]


def _evaluate_all(args: argparse.Namespace, runs: Path, wdir: Path, evals: Path, results: dict) -> None:
    from training.datasets import read_pack
    from training.evaluate import checkpoint_predictor, evaluate
    from training.export import export
    from training.metrics import plot_confusion_matrix

    sets = {s: read_pack(args.pack, s) for s in ("publictest", "ckplus")}
    if args.smoke:
        sets = {k: type(v)(v.images[::40], v.labels[::40]) for k, v in sets.items()}
    names = [n for n in [*args.configs, *args.configs2] if (runs / n / "best.pt").exists()]
    candidates: dict[str, list[str]] = {n: [n] for n in names}
    for combo in (TEACHERS, [n for n in args.configs if n in names]):  # a few reference ensembles
        combo = [n for n in combo if n in names]
        if len(combo) > 1:
            candidates["ens_" + "+".join(combo)] = combo
    for cand, members in candidates.items():
        try:
            path = wdir / f"emotion_{cand}.pt"
            sha = export([runs / m / "best.pt" for m in members], path)
            predict, _, _ = checkpoint_predictor(path)
            res = {"members": members, "bytes": path.stat().st_size, "sha256": sha}
            if len(members) == 1:
                res["arch"] = _arch_key(path)
            for split, data in sets.items():
                for tta in ("none", "flip", "crops"):
                    m = evaluate(predict, data.images, data.labels, tta)
                    res[f"{split}_{tta}"] = {
                        "accuracy": round(m["accuracy"], 5),
                        "macro_f1": round(m["macro_f1"], 5),
                        "n": m["n"],
                        "confusion_matrix": m["confusion_matrix"],
                        "per_class_f1": {k: round(v["f1"], 4) for k, v in m["per_class"].items()},
                    }
                    if tta == "none":
                        plot_confusion_matrix(
                            np.asarray(m["confusion_matrix"]),
                            evals / f"cm_{cand}_{split}_{tta}.png",
                            f"{cand} on {split}: acc {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}",
                        )
            results[cand] = res
            print(cand, {k: (v["accuracy"], v["macro_f1"]) for k, v in res.items() if isinstance(v, dict)}, flush=True)
        except Exception as err:  # one broken candidate must not lose the others
            results[cand] = {"error": repr(err)}
            print(f"{cand}: {err!r}", flush=True)

    singles = [n for n in names if "publictest_none" in results.get(n, {})]
    if singles:  # the CLI itself, once per dataset, on the best single model
        best = max(singles, key=lambda n: results[n]["publictest_none"]["accuracy"])
        for split in ("publictest", "ckplus"):
            cmd = [
                sys.executable,
                "-m",
                "training.evaluate",
                "--data",
                args.pack,
                "--split",
                split,
                "--weights",
                str(wdir / f"emotion_{best}.pt"),
                "--out",
                str(evals / f"cli_{split}"),
            ]
            r = subprocess.run(cmd, capture_output=True, text=True)
            (evals / f"cli_{split}.txt").write_text(r.stdout + r.stderr)
            print(
                f"CLI {split} on {best}: exit {r.returncode}; last line {r.stdout.strip().splitlines()[-1:]}",
                flush=True,
            )


def _returned_singles(results: dict, wdir: Path) -> list[str]:
    """Single models whose weights come back: the best small one first, then by PublicTest accuracy,
    as many as fit in RETURN_BYTES."""
    singles = [
        n
        for n, r in results.items()
        if len(r.get("members", [])) == 1 and "publictest_none" in r and r.get("arch") not in TEACHER_ONLY_ARCHS
    ]
    singles.sort(key=lambda n: -results[n]["publictest_none"]["accuracy"])
    small = [n for n in singles if results[n].get("arch") in SMALL_ARCHS]
    order = small[:1] + [n for n in singles if n not in small[:1]]
    chosen, total = [], 0
    for n in order:
        size = (wdir / f"emotion_{n}.pt").stat().st_size
        if total + size <= RETURN_BYTES:
            chosen.append(n)
            total += size
    return chosen


def _package(
    args: argparse.Namespace,
    out: Path,
    work: Path,
    runs: Path,
    env: dict,
    summaries: dict,
    results: dict,
    t0: float,
    t_train: float,
) -> None:
    wdir = work / "weights"
    done = _returned_singles(results, wdir)
    report = {
        "env": env,
        "budget_s": args.budget,
        "budget2_s": args.budget2,
        "train_wall_s": round(t_train, 1),
        "summaries": summaries,
        "results": results,
        "returned_weights": done,
        "total_wall_s": round(time.monotonic() - t0, 1),
    }
    (work / "results.json").write_text(json.dumps(report, indent=2))
    lines = ["| candidate | PT acc | PT F1 | PT flip | PT crops | CK+ acc | CK+ F1 | CK+ flip | MB |", "|---" * 9 + "|"]
    for cand, r in results.items():
        if "error" in r or "publictest_none" not in r:
            lines.append(f"| {cand} | error: {r.get('error')} |")
            continue
        lines.append(
            f"| {cand} | {r['publictest_none']['accuracy']:.4f} | {r['publictest_none']['macro_f1']:.4f} | "
            f"{r['publictest_flip']['accuracy']:.4f} | {r['publictest_crops']['accuracy']:.4f} | "
            f"{r['ckplus_none']['accuracy']:.4f} | {r['ckplus_none']['macro_f1']:.4f} | "
            f"{r['ckplus_flip']['accuracy']:.4f} | {r['bytes'] / 1e6:.1f} |"
        )
    (work / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)

    with tarfile.open(out / "results.tgz", "w:gz") as tar:
        for p in sorted(work.rglob("*")):
            if p.is_file() and p.suffix != ".pt":
                tar.add(p, arcname=str(p.relative_to(work)))
    # Only single models travel back (ensembles are rebuilt from them by training.export).
    blob = out / "weights.tar"
    with tarfile.open(blob, "w") as tar:
        for n in done:
            tar.add(wdir / f"emotion_{n}.pt", arcname=f"emotion_{n}.pt")
    data = blob.read_bytes()
    blob.unlink()
    part = 15 * 2**20
    for i in range(0, len(data), part):
        (out / f"weights.tar.part{i // part}").write_bytes(data[i : i + part])
    import shutil

    shutil.rmtree(work)
    print(f"packaged in {time.monotonic() - t0:.0f} s: {sorted(p.name for p in out.iterdir())}", flush=True)


if __name__ == "__main__":
    main()
