"""Reproduce the shipped emotion models (classlens_fer_fast and classlens_fer) in one command.

    python -m training.reproduce [--out models/weights] [--set key=value ...]      (or: make train-emotion)

Trains, in order, the three stage-1 configs (vgg_l and resnet_l, the teachers; vgg_s, the fast
model's start) and the two stage-2 configs that distil the teachers into the shipped nets
(kd_vgg_l -> emotion_classlens_fer_l.pt, kd_vgg_s -> emotion_classlens_fer_s.pt), from
../shared/data/fer2013.tar into artifacts/emotion/<name>/, then exports the two fp16 files to
--out and scores them on FER-2013 PublicTest and CK+48 (../shared/data/ckplus48.tar).

Each step is `python -m training.train --config training/configs/<name>.yaml`; a finished step
(summary.json present) is skipped and an interrupted one resumes from its last.pt, so rerunning the
command after an interruption continues where it stopped. The configs pin the epoch counts that
the 2026-11-27 H200 run reached (see training/README.md), where the runs took 440 s of training
side by side; one after another they take longer (not timed). It is GPU work: on this project's
2-core CPU the chain would take days.
GPU training is not bit-reproducible (cuDNN autotuning, bf16): expect +-0.5 points.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STAGE1 = ["vgg_l", "resnet_l", "vgg_s"]
STAGE2 = {"kd_vgg_l": "emotion_classlens_fer_l.pt", "kd_vgg_s": "emotion_classlens_fer_s.pt"}
FER = "../shared/data/fer2013.tar"
CKPLUS = "../shared/data/ckplus48.tar"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/weights", help="where the exported weights files go")
    ap.add_argument("--runs", default="artifacts/emotion", help="run folders: RUNS/<config name>/")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key in every config")
    ap.add_argument("--no-eval", action="store_true", help="export only (no PublicTest / CK+ scores)")
    args = ap.parse_args(argv)

    from training.evaluate import checkpoint_predictor, evaluate
    from training.export import export
    from training.train import ROOT, load_config, point_at_runs, train

    runs = Path(args.runs) if Path(args.runs).is_absolute() else ROOT / args.runs

    def config(name: str) -> dict:
        # Stage 2 starts from, and learns from, this chain's stage-1 runs.
        cfg = point_at_runs(load_config(ROOT / "training" / "configs" / f"{name}.yaml", args.set), runs)
        cfg["out_dir"] = str(runs / name)
        return cfg

    for name in [*STAGE1, *STAGE2]:
        cfg = config(name)
        run = Path(cfg["out_dir"])
        if (run / "summary.json").exists():
            print(f"[{name}] done before: {(run / 'summary.json').read_text()}", flush=True)
            continue
        train(cfg)

    from training.datasets import load_source

    sets = {}
    if not args.no_eval:
        sets["publictest"] = load_source(ROOT / FER, "publictest", 48)
        if (ROOT / CKPLUS).exists():
            sets["ckplus"] = load_source(ROOT / CKPLUS, None, 48)
    for name, file in STAGE2.items():
        out = Path(args.out) / file
        sha = export([Path(config(name)["out_dir"]) / "best.pt"], out)
        predict, _, _ = checkpoint_predictor(out)
        scores = {
            split: {
                k: round(v, 5)
                for k, v in evaluate(predict, s.images, s.labels).items()
                if k in ("accuracy", "macro_f1")
            }
            for split, s in sets.items()
        }
        print(json.dumps({"file": str(out), "sha256": sha, **scores}), flush=True)
    print("Update the sha256 constants in models/classlens_emotion.py if the files changed.", flush=True)


if __name__ == "__main__":
    main()
