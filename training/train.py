"""Train an emotion network from one YAML config.

    python -m training.train --config training/configs/<name>.yaml [--set key.sub=value ...]

Everything an experiment needs is in its config (see training/configs/ and training/README.md);
`--set` overrides single keys (YAML values). The run directory (`out_dir`) receives `config.yaml`
(the resolved config), `last.pt` (resumable: rerunning the same command continues from it),
`best.pt` (best validation accuracy, loadable by `training.evaluate --weights`), `log.csv` (one
row per epoch), `curves.png` and `summary.json`. Data are held on the device as uint8 tensors
and augmented there in batches (training/augment.py); CUDA runs use channels_last + bf16 autocast.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm import tqdm

from core.faces import EMOTIONS
from models.emotion_nets import create_emotion_net, fp32_state
from training.augment import AugmentConfig, augment, mix_batch, to_float
from training.datasets import FaceSet, balanced_indices, class_weights, load_source, merge
from training.metrics import classification_metrics, plot_learning_curves

ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    "name": "experiment",
    "seed": 0,
    "out_dir": None,  # default: artifacts/emotion/<name>
    "data": {
        "train": "../shared/data/fer2013.tar",
        "train_split": "train",
        "val": "../shared/data/fer2013.tar",
        "val_split": "publictest",
        "extra_train": [],  # [{path:, split:}] merged into train (e.g. CK+48, as the seed did)
        "size": 48,
        "balance_min_count": 0,  # oversample classes below this count each epoch (0 = off)
        "limit_per_class": 0,  # keep at most this many train images per class (0 = all; smoke runs)
    },
    "model": {"arch": "fer_resnet_s", "kwargs": {}},
    "init_from": None,  # weights file (best.pt or exported) whose weights start the run: fine-tuning
    # Pretrained weights for part of the net (e.g. facenet_fer's face-recognition body): a state dict
    # (or a checkpoint's "state_dict") loaded under `prefix`; keys the net lacks are skipped.
    # recalibrate_bn: that many train images set its batch norms' statistics (see recalibrate_bn).
    "init_backbone": {"path": None, "prefix": "", "recalibrate_bn": 0},
    "loss": {"class_weights": False, "label_smoothing": 0.0},
    # Knowledge distillation: loss = (1 - alpha) * CE + alpha * T^2 * KL(teachers || student), the
    # teachers' softened probabilities (temperature T) averaged over the weights files listed.
    "distill": {"teachers": [], "alpha": 0.0, "temperature": 1.0},
    "optimizer": {
        "name": "sgd",
        "lr": 0.1,
        "weight_decay": 5e-4,
        "momentum": 0.9,
        "nesterov": True,
        "no_decay_norm_bias": True,
        "backbone_lr_scale": 1.0,  # LR multiplier of the parameters under init_backbone.prefix
    },
    "schedule": {"name": "cosine", "warmup_epochs": 3, "step_epochs": 20, "gamma": 0.5},
    "augment": {"rotate": 10.0, "translate": 0.1, "scale": [0.9, 1.1], "flip": True, "jitter": 0.0, "erase": 0.0},
    "mix": {"mixup_alpha": 0.0, "cutmix_alpha": 0.0, "prob": 0.0},
    "train": {
        "epochs": 80,
        "batch_size": 128,
        "early_stop_patience": 0,  # epochs without a new best validation accuracy (0 = off)
        "ema_decay": 0.0,  # exponential moving average of weights, evaluated instead (0 = off)
        "time_budget_s": 0,  # stop (with results saved) before this much wall time (0 = none)
        "fit_epochs_to_budget": False,  # shrink `epochs` after epoch 2 so the schedule ends in budget
        "stop_epoch": 0,  # end the run after this epoch although the schedule plans `epochs` (0 = off);
        # replays a run that a time budget cut short
        "amp": "auto",  # bf16 autocast: auto = on CUDA only
        "device": "auto",
        "threads": 0,  # torch CPU threads (0 = leave as is)
        "eval_batch_size": 1024,
    },
}


def deep_update(base: dict, new: dict) -> dict:
    """Recursively merged copy of `base` with `new`."""
    out = copy.deepcopy(base)
    for k, v in new.items():
        out[k] = deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


SMOKE = {"data": {"limit_per_class": 16}, "train": {"epochs": 2, "batch_size": 32, "time_budget_s": 0, "device": "cpu"}}


def load_config(path: str | Path | None, overrides: list[str] = (), smoke: bool = False) -> dict:
    """DEFAULTS, updated by the YAML file, then `SMOKE` if asked, then `key.sub=value` overrides
    (values parsed as YAML). A smoke run's default out_dir ends in `_smoke`."""
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        cfg = deep_update(cfg, yaml.safe_load(Path(path).read_text()) or {})
    if smoke:
        cfg = deep_update(cfg, SMOKE)
        cfg["out_dir"] = (cfg["out_dir"] or f"artifacts/emotion/{cfg['name']}").rstrip("/") + "_smoke"
    for item in overrides:
        key, _, raw = item.partition("=")
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(raw)
    if not cfg["out_dir"]:
        cfg["out_dir"] = f"artifacts/emotion/{cfg['name']}"
    return cfg


def _path(p: str) -> Path:
    path = Path(p)
    return path if path.is_absolute() else ROOT / path


def load_data(cfg: dict) -> tuple[FaceSet, FaceSet]:
    """Train (merged with any extra sources, optionally limited per class) and validation sets."""
    d = cfg["data"]
    train = load_source(_path(d["train"]), d["train_split"], d["size"])
    extras = [load_source(_path(e["path"]), e.get("split"), d["size"]) for e in d["extra_train"]]
    if extras:
        train = merge([train, *extras])
    val = load_source(_path(d["val"]), d["val_split"], d["size"])
    if d["limit_per_class"]:
        rng = np.random.default_rng(cfg["seed"])
        keep = np.concatenate(
            [rng.permutation(np.flatnonzero(train.labels == c))[: d["limit_per_class"]] for c in range(len(EMOTIONS))]
        )
        keep.sort()
        train = FaceSet(train.images[keep], train.labels[keep])
        vkeep = np.concatenate(
            [np.flatnonzero(val.labels == c)[: max(2, d["limit_per_class"] // 2)] for c in range(len(EMOTIONS))]
        )
        val = FaceSet(val.images[np.sort(vkeep)], val.labels[np.sort(vkeep)])
    return train, val


def point_at_runs(cfg: dict, runs: Path) -> dict:
    """`cfg` with `init_from` and the distillation teachers moved into `runs`: a path
    `<anything>/<name>/best.pt` becomes `runs/<name>/best.pt` (a stage-2 config names its stage-1
    runs by their default out_dir, artifacts/emotion/<name>/)."""
    cfg = copy.deepcopy(cfg)
    if cfg["init_from"]:
        cfg["init_from"] = str(runs / Path(cfg["init_from"]).parent.name / "best.pt")
    cfg["distill"]["teachers"] = [str(runs / Path(t).parent.name / "best.pt") for t in cfg["distill"]["teachers"]]
    return cfg


def build_model(cfg: dict) -> nn.Module:
    return create_emotion_net(cfg["model"]["arch"], **cfg["model"]["kwargs"])


def build_optimizer(model: nn.Module, o: dict, backbone_prefix: str = "") -> torch.optim.Optimizer:
    """SGD/Adam/AdamW over the parameter groups (weight decay, no decay: norms and biases when
    `no_decay_norm_bias`), and with a `backbone_prefix` the same two again for the parameters named
    under it, their LR scaled by `backbone_lr_scale`. Groups may be empty (the layout, which a
    resumed optimizer state must match, depends on the config alone). Each group's "lr" is its
    base LR before the schedule."""
    keys = [(False, False), (True, False)] + ([(False, True), (True, True)] if backbone_prefix else [])
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {k: [] for k in keys}
    for name, p in model.named_parameters():
        no_decay = bool(o.get("no_decay_norm_bias")) and (p.ndim <= 1 or name.endswith(".bias"))
        backbone = bool(backbone_prefix) and name.startswith(backbone_prefix)
        groups[(no_decay, backbone)].append(p)
    scale = float(o.get("backbone_lr_scale", 1.0))
    params = [
        {"params": ps, "weight_decay": 0.0 if no_decay else o["weight_decay"], "lr": o["lr"] * (scale if bb else 1.0)}
        for (no_decay, bb), ps in groups.items()
    ]
    if o["name"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"])
    if o["name"] == "adam":
        return torch.optim.Adam(params, lr=o["lr"])
    if o["name"] == "adamw":
        return torch.optim.AdamW(params, lr=o["lr"])
    raise ValueError(f"optimizer.name must be sgd, adam or adamw, not {o['name']!r}")


def load_backbone(model: nn.Module, path: str | Path, prefix: str) -> int:
    """Copy pretrained tensors into `model`'s parameters and buffers named `prefix + key`; returns
    how many. Keys the model lacks are skipped (a recognition head, say); a shape mismatch, or no
    key matching at all, raises ValueError."""
    state = torch.load(_path(str(path)), map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    own = model.state_dict()
    take = {prefix + k: v for k, v in state.items() if prefix + k in own}
    if not take:
        raise ValueError(f"init_backbone {path}: none of its {len(state)} tensors fit the model under {prefix!r}")
    for k, v in take.items():
        if v.shape != own[k].shape:
            raise ValueError(f"init_backbone {path}: {k} is {tuple(v.shape)}, the model has {tuple(own[k].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in take.items()}, strict=False)
    return len(take)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, prefix: str = "") -> int:
    """Move the batch norms under `prefix` to the statistics of `x` (a batch of this task's
    images) without changing what the net computes in eval mode: running mean/var become the
    batch's, and weight/bias absorb the difference. Pretrained weights whose batch norm was folded
    (running stats 0 and 1) then also behave as pretrained in train mode, where batch statistics
    replace the running ones. Returns the number of layers moved."""
    bns = {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (n + ".").startswith(prefix) and m.affine
    }
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(name: str):
        def grab(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            t = inputs[0].float()
            dims = [d for d in range(t.ndim) if d != 1]
            stats[name] = (t.mean(dim=dims), t.var(dim=dims, unbiased=False))

        return grab

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in bns.items()]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for n, m in bns.items():
        mu, var = stats[n]
        old_sd = (m.running_var + m.eps).sqrt()
        new_sd = (var + m.eps).sqrt()
        m.bias.add_(m.weight * (mu - m.running_mean) / old_sd)
        m.weight.mul_(new_sd / old_sd)
        m.running_mean.copy_(mu)
        m.running_var.copy_(var)
    return len(bns)


def lr_factor(s: dict, epoch: int, step_in_epoch: int, steps_per_epoch: int, total_epochs: int) -> float:
    """Multiplier of the base LR: "step" = StepLR per epoch; "cosine" = linear warmup, cosine to 0."""
    if s["name"] == "step":
        return s["gamma"] ** (epoch // s["step_epochs"])
    if s["name"] == "cosine":
        t = epoch + step_in_epoch / steps_per_epoch
        w = s["warmup_epochs"]
        if t < w:
            return (t + 1 / steps_per_epoch) / w
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (t - w) / max(total_epochs - w, 1e-9))))
    if s["name"] == "constant":
        return 1.0
    raise ValueError(f"schedule.name must be step, cosine or constant, not {s['name']!r}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def predict_probs(
    model: nn.Module, images: torch.Tensor, batch_size: int, amp: bool, channels_last: bool
) -> torch.Tensor:
    """Softmax probabilities (N, 7) float32 on the images' device for (N, S, S) uint8 images."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = to_float(images[i : i + batch_size])
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            out.append(model(x).float().softmax(dim=1))
    return torch.cat(out)


class Ema:
    """Exponential moving average of a model's parameters (buffers copied), with a warmup."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        ema_p = [p for p in self.model.parameters()]
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1 - d)
        for b_ema, b in zip(self.model.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)


def load_teachers(paths: list[str], device: torch.device, channels_last: bool) -> list[nn.Module]:
    """Frozen networks (eval mode) from weights files, for distillation."""
    from training.evaluate import load_checkpoint_net

    teachers = []
    for p in paths:
        net, _ = load_checkpoint_net(_path(p), device)
        net.requires_grad_(False)
        teachers.append(net.to(memory_format=torch.channels_last) if channels_last else net)
    return teachers


def distill_loss(
    logits: torch.Tensor, teachers: list[nn.Module], x: torch.Tensor, temperature: float, amp: bool
) -> torch.Tensor:
    """T^2 * KL(mean of the teachers' softened probabilities || the student's), batch mean."""
    with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        target = torch.stack([t(x).float().div(temperature).softmax(dim=1) for t in teachers]).mean(dim=0)
    log_student = F.log_softmax(logits.float() / temperature, dim=1)
    return F.kl_div(log_student, target, reduction="batchmean") * temperature**2


def checkpoint_payload(model: nn.Module, cfg: dict, meta: dict) -> dict:
    """The weights-file format read by `training.evaluate` and the app's loader."""
    return {
        "format": "classlens-emotion-v1",
        "arch": cfg["model"]["arch"],
        "arch_kwargs": cfg["model"]["kwargs"],
        "input_size": cfg["data"]["size"],
        "classes": list(EMOTIONS),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }


def _write_csv(history: list[dict], path: Path) -> None:
    if not history:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)


def train(cfg: dict, max_epochs_this_run: int = 0) -> dict:
    """Run (or resume) one experiment; returns the summary also written to summary.json.

    Args:
        max_epochs_this_run: stop after this many epochs in this call (0 = no limit), leaving a
            resumable last.pt, as an interrupted run would.
    """
    t_start = time.monotonic()
    tcfg = cfg["train"]
    out = _path(cfg["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if tcfg["threads"]:
        torch.set_num_threads(tcfg["threads"])
    device = pick_device(tcfg["device"])
    cuda = device.type == "cuda"
    amp = cuda if tcfg["amp"] == "auto" else bool(tcfg["amp"])
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seed = int(cfg["seed"])
    seed_everything(seed)

    train_set, val_set = load_data(cfg)
    x_train = torch.from_numpy(train_set.images).to(device)
    y_train = torch.from_numpy(train_set.labels).to(device)
    x_val = torch.from_numpy(val_set.images).to(device)
    y_val_np = val_set.labels
    y_val = torch.from_numpy(y_val_np).to(device)
    bal = cfg["data"]["balance_min_count"]
    if cfg["data"]["limit_per_class"]:  # a limited (smoke) run keeps the balancing, scaled down
        bal = min(bal, cfg["data"]["limit_per_class"])
    counts = train_set.counts()
    if bal:  # the class frequencies an epoch actually sees
        counts = np.bincount(
            train_set.labels[balanced_indices(train_set.labels, bal, np.random.default_rng(0))], minlength=len(EMOTIONS)
        )
    weight = torch.from_numpy(class_weights(counts)).to(device) if cfg["loss"]["class_weights"] else None

    model = build_model(cfg).to(device)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if cfg["init_from"] and not last_path.exists():
        init = torch.load(_path(cfg["init_from"]), map_location=device, weights_only=True)
        if init["arch"] != cfg["model"]["arch"]:
            raise ValueError(f"init_from holds a {init['arch']}, the config trains a {cfg['model']['arch']}")
        model.load_state_dict(fp32_state(init["state_dict"]))
        print(f"[{cfg['name']}] initialised from {cfg['init_from']}", flush=True)
    backbone = cfg["init_backbone"]
    if backbone["path"] and not cfg["init_from"] and not last_path.exists():
        n = load_backbone(model, backbone["path"], backbone["prefix"])
        print(f"[{cfg['name']}] {n} backbone tensors from {backbone['path']}", flush=True)
        if backbone["recalibrate_bn"]:
            calib = np.random.default_rng(seed).permutation(len(train_set))[: backbone["recalibrate_bn"]]
            calib_x = to_float(x_train[torch.from_numpy(np.sort(calib)).to(device)])
            n = recalibrate_bn(model, calib_x, backbone["prefix"])
            print(f"[{cfg['name']}] {n} batch norms recalibrated", flush=True)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    teachers = load_teachers(cfg["distill"]["teachers"], device, cuda)
    kd_alpha, kd_t = float(cfg["distill"]["alpha"]), float(cfg["distill"]["temperature"])
    opt = build_optimizer(model, cfg["optimizer"], backbone["prefix"] if backbone["path"] else "")
    ema = Ema(model, tcfg["ema_decay"]) if tcfg["ema_decay"] else None
    aug_cfg = AugmentConfig(**{**cfg["augment"], "scale": tuple(cfg["augment"]["scale"])})
    mix = cfg["mix"]
    bs = int(tcfg["batch_size"])
    total_epochs = int(tcfg["epochs"])

    base_lrs = [group["lr"] for group in opt.param_groups]  # before a resume loads the last LRs

    history: list[dict] = []
    start_epoch, best_acc, best_epoch, global_step = 0, -1.0, -1, 0
    if last_path.exists():
        ck = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if ema is not None:
            ema.model.load_state_dict(ck["ema"])
        start_epoch, best_acc, best_epoch = ck["epoch"] + 1, ck["best_acc"], ck["best_epoch"]
        global_step, history, total_epochs = ck["global_step"], ck["history"], ck["total_epochs"]
        print(f"[{cfg['name']}] resumed from {last_path} at epoch {start_epoch}", flush=True)

    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"[{cfg['name']}] {cfg['model']['arch']} {n_params / 1e6:.2f} M params, train {len(train_set)}, "
        f"val {len(val_set)}, device {device}, amp {amp}",
        flush=True,
    )
    patience = tcfg["early_stop_patience"]
    budget = float(tcfg["time_budget_s"] or 0)
    stop_reason = "epochs"
    epochs_this_run = 0
    g = torch.Generator(device=device)
    epoch = start_epoch
    while epoch < total_epochs:
        t_epoch = time.monotonic()
        # Everything random in an epoch derives from (seed, epoch): resuming reproduces it exactly.
        torch.manual_seed(seed * 100_003 + epoch)
        g.manual_seed(seed * 100_003 + epoch)
        np_rng = np.random.default_rng([seed, epoch])
        idx = balanced_indices(train_set.labels, bal, np_rng) if bal else np.arange(len(train_set))
        order = torch.from_numpy(idx[np_rng.permutation(len(idx))]).to(device)
        steps = len(order) // bs if len(order) >= bs else 1
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        bar = tqdm(
            range(steps), desc=f"{cfg['name']} {epoch + 1}/{total_epochs}", leave=False, disable=None, mininterval=2
        )
        for step in bar:
            f = lr_factor(cfg["schedule"], epoch, step, steps, total_epochs)
            for group, base in zip(opt.param_groups, base_lrs, strict=True):
                group["lr"] = base * f
            bi = order[step * bs : (step + 1) * bs]
            x = augment(x_train[bi], aug_cfg, g)
            y = y_train[bi]
            y2, lam = y, 1.0
            if mix["prob"] and torch.rand(1, generator=g, device=device).item() < mix["prob"]:
                x, y, y2, lam = mix_batch(x, y, mix["mixup_alpha"], mix["cutmix_alpha"], g)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
            logits = logits.float()
            ls = cfg["loss"]["label_smoothing"]
            loss = F.cross_entropy(logits, y, weight=weight, label_smoothing=ls)
            if lam < 1.0:
                loss = lam * loss + (1 - lam) * F.cross_entropy(logits, y2, weight=weight, label_smoothing=ls)
            if teachers and kd_alpha:
                loss = (1 - kd_alpha) * loss + kd_alpha * distill_loss(logits, teachers, x, kd_t, amp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            global_step += 1
            if ema is not None:
                ema.update(model, global_step)
            loss_sum += loss.detach() * len(bi)
            correct += (logits.argmax(1) == y).sum()
            seen += len(bi)
        bar.close()

        eval_model = ema.model if ema is not None else model
        probs = predict_probs(eval_model, x_val, tcfg["eval_batch_size"], amp, cuda)
        val_loss = float(F.cross_entropy(probs.clamp_min(1e-8).log(), y_val))
        pred = probs.argmax(1).cpu().numpy()
        m = classification_metrics(y_val_np, pred)
        epoch_s = time.monotonic() - t_epoch
        row = {
            "epoch": epoch + 1,
            "lr": round(base_lrs[0] * f, 8),
            "train_loss": round(float(loss_sum) / seen, 5),
            "train_acc": round(float(correct) / seen, 5),
            "val_loss": round(val_loss, 5),
            "val_acc": round(m["accuracy"], 5),
            "val_macro_f1": round(m["macro_f1"], 5),
            "epoch_s": round(epoch_s, 2),
            "elapsed_s": round(time.monotonic() - t_start, 1),
        }
        history.append(row)
        improved = m["accuracy"] > best_acc
        if improved:
            best_acc, best_epoch = m["accuracy"], epoch + 1
            meta = {
                "name": cfg["name"],
                "epoch": epoch + 1,
                "val_acc": m["accuracy"],
                "val_macro_f1": m["macro_f1"],
                "ema": ema is not None,
            }
            torch.save(checkpoint_payload(eval_model, cfg, meta), best_path)
        print(
            f"[{cfg['name']}] epoch {epoch + 1}/{total_epochs} "
            + " ".join(f"{k}={v}" for k, v in row.items() if k != "epoch")
            + (" *" if improved else ""),
            flush=True,
        )

        if epoch + 1 == 2 and tcfg["fit_epochs_to_budget"] and budget:
            # Plan the schedule's length from the measured epoch time (before cosine decay starts).
            fit = 2 + int((0.92 * budget - (time.monotonic() - t_start)) / max(epoch_s, 1e-3))
            if fit < total_epochs:
                print(f"[{cfg['name']}] time budget {budget:.0f} s: epochs {total_epochs} -> {max(fit, 3)}", flush=True)
                total_epochs = max(fit, 3)
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "ema": ema.model.state_dict() if ema is not None else None,
                "epoch": epoch,
                "best_acc": best_acc,
                "best_epoch": best_epoch,
                "global_step": global_step,
                "history": history,
                "total_epochs": total_epochs,
                "config": cfg,
            },
            last_path,
        )
        _write_csv(history, out / "log.csv")
        epoch += 1
        epochs_this_run += 1
        if patience and epoch - best_epoch >= patience:
            stop_reason = f"early stop: no better val acc for {patience} epochs"
            break
        if budget and epoch < total_epochs and (time.monotonic() - t_start) + 1.2 * epoch_s > budget:
            stop_reason = f"time budget {budget:.0f} s"
            break
        if tcfg["stop_epoch"] and epoch >= tcfg["stop_epoch"] and epoch < total_epochs:
            stop_reason = f"stop_epoch {tcfg['stop_epoch']}"
            break
        if max_epochs_this_run and epochs_this_run >= max_epochs_this_run:
            stop_reason = "max_epochs_this_run"
            break

    try:
        plot_learning_curves(history, out / "curves.png", f"{cfg['name']} ({cfg['model']['arch']})")
    except Exception as err:  # a missing plotting backend must not lose a finished run
        print(f"[{cfg['name']}] curves not plotted: {err}", file=sys.stderr)
    summary = {
        "name": cfg["name"],
        "arch": cfg["model"]["arch"],
        "params": n_params,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "epochs_run": len(history),
        "epochs_planned": total_epochs,
        "stop_reason": stop_reason,
        "best_epoch": best_epoch,
        "best_val_acc": best_acc,
        "best_val_macro_f1": next((h["val_macro_f1"] for h in history if h["epoch"] == best_epoch), None),
        "wall_s_this_run": round(time.monotonic() - t_start, 1),
        "train_s_total": round(sum(h["epoch_s"] for h in history), 1),
        "torch": torch.__version__,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[{cfg['name']}] done: {json.dumps(summary)}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="YAML experiment file (training/configs/*.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="mechanics check: 16 images per class, 2 epochs, CPU, out_dir suffixed _smoke",
    )
    ap.add_argument("--max-epochs-this-run", type=int, default=0, help="stop early leaving a resumable last.pt")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.set, smoke=args.smoke)
    train(cfg, args.max_epochs_this_run)


if __name__ == "__main__":
    main()
