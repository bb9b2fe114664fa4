"""training/: datasets, augmentation, metrics, the train loop (resume included) and the evaluate CLI.

Runs on the committed mechanics fixture (tests/fixtures/training/faces: 10 MIT-licensed faces per
class, see its SOURCE.md), never on FER-2013 or CK+ (not redistributable); one test reads
../shared/data/fer2013.tar when that file exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from core.faces import EMOTIONS
from models.emotion_nets import EMOTION_NETS, create_emotion_net
from training.augment import AugmentConfig, augment, mix_batch, tta_views
from training.datasets import (
    FaceSet,
    balanced_indices,
    class_weights,
    fer_class,
    load_source,
    pack_splits,
    read_fer_csv,
    read_image_folder,
    read_pack,
)
from training.metrics import classification_metrics, confusion_matrix

HERE = Path(__file__).resolve().parent
FACES = HERE / "fixtures" / "training" / "faces"
CONFIGS = sorted((HERE.parent / "training" / "configs").glob("*.yaml"))
FER_TAR = HERE.parent.parent / "shared" / "data" / "fer2013.tar"
TINY_NET = ["model.arch=fer_resnet", "model.kwargs={stem_width: 8, widths: [8, 8, 16, 16]}"]

torch.set_num_threads(2)


def _fixture_cfg(tmp_path: Path, config: Path | None, extra: list[str] = ()) -> dict:
    from training.train import load_config

    return load_config(
        config,
        [
            f"data.train={FACES}",
            "data.train_split=null",
            f"data.val={FACES}",
            "data.val_split=null",
            "data.limit_per_class=2",
            "train.epochs=1",
            "train.batch_size=14",
            "train.device=cpu",
            "train.fit_epochs_to_budget=false",
            "train.time_budget_s=0",
            f"out_dir={tmp_path / 'run'}",
            *extra,
        ],
    )


# --- datasets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("angry", "angry"),
        ("anger", "angry"),
        ("Sadness", "sad"),
        ("happiness", "happy"),
        ("contempt", None),
        ("neutral", "neutral"),
        ("smirk", ValueError),
    ],
)
def test_folder_names_map_to_fer_classes(folder, expected):
    if expected is ValueError:
        with pytest.raises(ValueError, match="not a FER-2013 class"):
            fer_class(folder)
    else:
        assert fer_class(folder) == expected


def test_image_folder_reads_every_class_as_48x48_gray():
    faces = read_image_folder(FACES)
    assert faces.images.shape == (70, 48, 48) and faces.images.dtype == np.uint8
    assert faces.counts().tolist() == [10] * 7
    assert faces.dropped == {}


def test_ckplus_names_are_mapped_and_contempt_dropped(tmp_path):
    for name, src in (("anger", "angry"), ("sadness", "sad"), ("contempt", "happy")):
        (tmp_path / name).mkdir()
        for f in sorted((FACES / src).glob("*.png"))[:3]:
            (tmp_path / name / f.name).write_bytes(f.read_bytes())
    faces = read_image_folder(tmp_path)
    assert faces.counts()[EMOTIONS.index("angry")] == 3 and faces.counts()[EMOTIONS.index("sad")] == 3
    assert len(faces) == 6 and faces.dropped == {"contempt": 3}


def test_fer_csv_reader_filters_by_usage(tmp_path):
    faces = read_image_folder(FACES)
    rows = ["emotion,pixels,Usage"]
    for i, usage in enumerate(["Training", "PublicTest", "Training", "PrivateTest"]):
        rows.append(f"{faces.labels[i * 10]},{' '.join(map(str, faces.images[i * 10].ravel()))},{usage}")
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(rows) + "\n")
    train = read_fer_csv(path, "train")
    assert train.images.shape == (2, 48, 48)
    assert np.array_equal(train.images[1], faces.images[20]) and train.labels.tolist() == [0, 2]
    assert load_source(path, "publictest").labels.tolist() == [1]


def test_pack_round_trip_keeps_pixels(tmp_path):
    faces = read_image_folder(FACES)
    synthetic = FaceSet(faces.images[:5].copy(), faces.labels[:5])  # no files: stored as PNG
    pack_splits(tmp_path / "p.npz", {"train": faces, "extra": synthetic})
    back = read_pack(tmp_path / "p.npz", "train")
    assert np.array_equal(back.images, faces.images) and np.array_equal(back.labels, faces.labels)
    assert np.array_equal(read_pack(tmp_path / "p.npz", "extra").images, synthetic.images)
    with pytest.raises(KeyError, match="no split"):
        read_pack(tmp_path / "p.npz", "publictest")


def test_balancing_oversamples_small_classes_only():
    labels = np.array([0] * 10 + [1] * 2 + [3] * 5)
    idx = balanced_indices(labels, 6, np.random.default_rng(0))
    counts = np.bincount(labels[idx], minlength=7)
    assert counts.tolist() == [10, 6, 0, 6, 0, 0, 0]
    assert set(idx[labels[idx] == 0]) == set(range(10))  # big classes: every image once
    w = class_weights(np.array([10, 6, 0, 6, 0, 0, 0]))
    assert w[2] == 0 and w[1] == pytest.approx(22 / (3 * 6)) and w[0] < w[1]


@pytest.mark.skipif(not FER_TAR.exists(), reason="../shared/data/fer2013.tar not present")
def test_fer2013_publictest_counts_from_the_tar():
    pt = load_source(FER_TAR, "publictest")
    assert pt.counts().tolist() == [467, 56, 496, 895, 653, 415, 607]


# --- augmentation, metrics, nets -----------------------------------------------------------------


def test_augment_is_batched_bounded_and_seeded():
    x = torch.from_numpy(read_image_folder(FACES).images[:8])
    cfg = AugmentConfig(rotate=15, translate=0.1, scale=(0.85, 1.15), flip=True, jitter=0.3, erase=0.5)
    a = augment(x, cfg, torch.Generator().manual_seed(1))
    b = augment(x, cfg, torch.Generator().manual_seed(1))
    assert a.shape == (8, 1, 48, 48) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, augment(x, cfg, torch.Generator().manual_seed(2)))
    identity = augment(x, AugmentConfig(), torch.Generator())
    assert torch.allclose(identity[:, 0] * 255, x.float(), atol=1e-3)
    mixed, _, y2, lam = mix_batch(a, torch.arange(8), 0.0, 1.0, torch.Generator().manual_seed(0))
    assert mixed.shape == a.shape and 0 <= lam <= 1 and sorted(y2.tolist()) == list(range(8))
    assert [v.shape for v in tta_views(x, "crops")] == [(8, 48, 48)] * 10
    assert torch.equal(tta_views(x, "flip")[1], x.flip(-1))


def test_metrics_match_a_hand_computed_example():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    cm = confusion_matrix(y_true, y_pred)
    assert cm[:3, :3].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]] and cm.sum() == 5
    m = classification_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["per_class"]["angry"]["precision"] == pytest.approx(1 / 2)
    assert m["per_class"]["disgust"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["disgust"]["f1"] == pytest.approx(0.8)
    assert m["per_class"]["fear"]["f1"] == 0
    # macro over the three classes present in y_true: (0.5 + 0.8 + 0) / 3
    assert m["macro_f1"] == pytest.approx(1.3 / 3)
    assert m["macro_recall"] == pytest.approx((0.5 + 1 + 0) / 3)


# resnet50_seed runs forward and backward in test_every_config_trains_one_epoch.
@pytest.mark.parametrize("name", sorted(set(EMOTION_NETS) - {"ensemble", "fer_resnet", "resnet50_seed"}))
def test_every_registered_net_maps_faces_to_seven_logits(name):
    net = create_emotion_net(name).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, 48, 48)).shape == (2, 7)


def test_seed_resnet50_is_the_seed_configuration():
    net = create_emotion_net("resnet50_seed").body
    assert net.conv1.in_channels == 1 and net.conv1.kernel_size == (7, 7)
    head = [type(m).__name__ for m in net.fc]
    assert head == ["Linear", "ReLU", "Dropout", "Linear"]
    assert (net.fc[0].in_features, net.fc[0].out_features, net.fc[2].p, net.fc[3].out_features) == (2048, 256, 0.3, 7)


# --- training loop ---------------------------------------------------------------------------------


def test_loss_falls_over_a_few_steps():
    from training.train import build_optimizer, load_config

    cfg = load_config(None, TINY_NET)
    torch.manual_seed(0)
    net = create_emotion_net(cfg["model"]["arch"], **cfg["model"]["kwargs"])
    faces = read_image_folder(FACES)
    x = torch.from_numpy(faces.images[::3]).unsqueeze(1).float() / 255
    y = torch.from_numpy(faces.labels[::3])
    opt = build_optimizer(net, {"name": "adam", "lr": 1e-2, "weight_decay": 0.0})
    losses = []
    for _ in range(10):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.85, losses


def _random_checkpoint(path: Path, cfg: dict) -> Path:
    """A weights file of the config's architecture with random weights (a stand-in teacher or start)."""
    from training.train import build_model, checkpoint_payload

    torch.save(checkpoint_payload(build_model(cfg).eval(), cfg, {}), path)
    return path


def _stage2_sets(tmp_path: Path, config: Path) -> list[str]:
    """Overrides pointing a kd_* config at stand-in stage-1 weights in tmp_path."""
    from training.train import load_config

    cfg = yaml.safe_load(config.read_text())

    def stage1(weights: str) -> dict:  # the config that trains artifacts/emotion/<name>/best.pt
        return load_config(config.parent / f"{Path(weights).parent.name}.yaml")

    init = _random_checkpoint(tmp_path / "init.pt", stage1(cfg["init_from"]))
    teachers = [
        str(_random_checkpoint(tmp_path / f"teacher{i}.pt", stage1(t)))
        for i, t in enumerate(cfg["distill"]["teachers"])
    ]
    return [f"init_from={init}", f"distill.teachers={teachers}"]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_trains_one_epoch(tmp_path, config):
    from training.train import train

    extra = _stage2_sets(tmp_path, config) if config.stem.startswith("kd") else []
    summary = train(_fixture_cfg(tmp_path, config, extra))
    run = tmp_path / "run"
    assert summary["epochs_run"] == 1 and 0 <= summary["best_val_acc"] <= 1
    for f in ("best.pt", "last.pt", "log.csv", "curves.png", "summary.json", "config.yaml"):
        assert (run / f).is_file(), f
    assert (run / "log.csv").read_text().splitlines()[0].startswith("epoch,lr,train_loss,train_acc,val_loss,val_acc")


def test_face_recognition_weights_start_facenet_fer_and_recalibration_keeps_its_function(tmp_path):
    from models.facenet import FACENET_CASIA_FILE, GENERATED_DIR
    from training.export import export_backbone
    from training.train import load_backbone, recalibrate_bn

    torch.manual_seed(0)
    small = tmp_path / "body_fp16.pt"
    export_backbone(GENERATED_DIR / FACENET_CASIA_FILE, small)  # what a GPU machine receives
    body = torch.load(small, weights_only=True)
    assert not any(k.startswith("last_linear") for k in body) and body["conv2d_1a.conv.weight"].dtype == torch.float16
    net = create_emotion_net("facenet_fer", size=112)
    assert load_backbone(net, small, "body.") == len(body)
    assert torch.equal(net.body.repeat_2[0].branch0.conv.weight, body["repeat_2.0.branch0.conv.weight"].float())
    bn = net.body.conv2d_4b.bn
    assert torch.all(bn.running_mean == 0)  # FaceNet's batch norms come folded into the convs

    faces = torch.from_numpy(read_image_folder(FACES).images).unsqueeze(1).float() / 255
    net.eval()
    before = net(faces)
    assert recalibrate_bn(net, faces, "body.") == 111
    assert torch.allclose(net(faces), before, atol=1e-4)  # eval mode: the same function
    assert not torch.all(bn.running_mean == 0)
    net.head[2].p = 0.0  # no dropout: train mode then differs from eval only in its batch statistics
    net.train()
    assert torch.allclose(net(faces), before, atol=1e-3)  # the calibration batch's statistics = the running ones


def test_backbone_loading_refuses_weights_that_do_not_fit(tmp_path):
    from training.train import load_backbone

    net = create_emotion_net("fer_vgg", width=8)
    torch.save({"nothing.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="none of its 1 tensors"):
        load_backbone(net, tmp_path / "other.pt", "")
    torch.save({"features.0.0.weight": torch.zeros(4, 1, 3, 3)}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match=r"features\.0\.0\.weight is"):
        load_backbone(net, tmp_path / "wrong.pt", "")


def test_backbone_parameters_get_their_own_learning_rate():
    from training.train import build_optimizer

    net = create_emotion_net("fer_vgg", width=8)
    o = {"name": "sgd", "lr": 0.1, "weight_decay": 5e-4, "momentum": 0.9, "nesterov": True}
    opt = build_optimizer(net, {**o, "no_decay_norm_bias": True, "backbone_lr_scale": 0.1}, "features.")
    lrs = {(g["lr"], g["weight_decay"]): sum(p.numel() for p in g["params"]) for g in opt.param_groups}
    n_features = sum(p.numel() for p in net.features.parameters())
    assert sum(n for (lr, _), n in lrs.items() if lr == pytest.approx(0.01)) == n_features
    assert sum(lrs.values()) == sum(p.numel() for p in net.parameters())
    plain = build_optimizer(net, {**o, "no_decay_norm_bias": False}).param_groups
    assert [len(g["params"]) for g in plain] == [len(list(net.parameters())), 0]  # the layout of older runs


def test_distillation_loss_is_zero_only_when_the_student_matches_the_teachers():
    from training.train import distill_loss

    class Fixed(torch.nn.Module):
        def __init__(self, logits: torch.Tensor) -> None:
            super().__init__()
            self.logits = logits

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.logits

    a = torch.tensor([[2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    x = torch.zeros(1, 1, 48, 48)
    assert distill_loss(a, [Fixed(a)], x, 3.0, amp=False).item() == pytest.approx(0.0, abs=1e-6)
    # Two teachers average their softened probabilities: with T = 1, p = (softmax(a) + softmax(b)) / 2.
    p = (a.softmax(1) + b.softmax(1)) / 2
    expected = (p * (p.log() - a.log_softmax(1))).sum()
    assert distill_loss(a, [Fixed(a), Fixed(b)], x, 1.0, amp=False).item() == pytest.approx(expected.item(), rel=1e-5)
    # T^2 scaling: at T = 2 the loss is 4 x the KL of the softened distributions.
    pa, pb = (a / 2).softmax(1), (b / 2).softmax(1)
    kl = (pb * (pb.log() - pa.log())).sum()
    assert distill_loss(a, [Fixed(b)], x, 2.0, amp=False).item() == pytest.approx(4 * kl.item(), rel=1e-5)


def test_fine_tuning_starts_from_init_from_and_stop_epoch_ends_early(tmp_path):
    from training.train import train

    torch.manual_seed(5)
    start = _random_checkpoint(tmp_path / "start.pt", _fixture_cfg(tmp_path, None, TINY_NET))
    extra = [*TINY_NET, f"init_from={start}", "optimizer.lr=0.0", "train.epochs=5", "train.stop_epoch=2"]
    summary = train(_fixture_cfg(tmp_path, None, extra))
    assert summary["epochs_run"] == 2 and summary["epochs_planned"] == 5
    assert summary["stop_reason"] == "stop_epoch 2"
    init = torch.load(start, weights_only=True)["state_dict"]
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["state_dict"]
    convs = [k for k in init if k.endswith("conv1.weight") or k.endswith("conv2.weight")]
    assert convs and all(torch.equal(init[k], best[k]) for k in convs)  # lr 0: weights stay the start's


def test_reproduce_chains_both_stages_and_exports_the_shipped_files(tmp_path, capsys):
    from models.classlens_emotion import load_weights_file
    from training.reproduce import main as reproduce

    sets = [f"data.train={FACES}", "data.train_split=null", f"data.val={FACES}", "data.val_split=null"]
    sets += [
        "data.limit_per_class=2",
        "train.epochs=1",
        "train.stop_epoch=0",
        "train.batch_size=14",
        "train.device=cpu",
    ]
    args = ["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "w"), "--no-eval"]
    reproduce([*args, *(a for s in sets for a in ("--set", s))])
    kd = yaml.safe_load((tmp_path / "runs" / "kd_vgg_s" / "config.yaml").read_text())
    assert kd["init_from"] == str(tmp_path / "runs" / "vgg_s" / "best.pt")
    assert kd["distill"]["teachers"] == [str(tmp_path / "runs" / t / "best.pt") for t in ("vgg_l", "resnet_l")]
    faces = read_image_folder(FACES).images[:3]
    for file in ("emotion_classlens_fer_l.pt", "emotion_classlens_fer_s.pt"):
        assert load_weights_file(str(tmp_path / "w" / file), file).predict(faces).shape == (3, 7)
    reproduce([*args, *(a for s in sets for a in ("--set", s))])  # again: every step is skipped
    assert capsys.readouterr().out.count("done before") == 5


def test_device_runs_are_sized_by_their_budget_not_by_an_earlier_replay(tmp_path, monkeypatch):
    from training.run_device import _train_command
    from training.train import load_config

    monkeypatch.chdir(HERE.parent)  # run_device names configs relative to the repository root

    def cfg_of(cmd: list[str]) -> dict:
        sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
        return load_config(cmd[cmd.index("--config") + 1], sets)

    runs = tmp_path / "runs"
    stage1 = cfg_of(_train_command("vgg_l", "pack.npz", runs, 330, smoke=False, epochs=300))
    assert load_config("training/configs/vgg_l.yaml")["train"]["stop_epoch"] == 95  # the pinned replay
    assert stage1["train"]["stop_epoch"] == 0 and stage1["train"]["epochs"] == 300
    assert stage1["train"]["time_budget_s"] == 330 and stage1["train"]["fit_epochs_to_budget"] is True
    assert stage1["out_dir"] == str(runs / "vgg_l") and stage1["data"]["train"] == "pack.npz"
    assert _train_command("kd_vgg_l", "pack.npz", runs, 150, smoke=False, stage2=True) is None  # no vgg_l yet
    for name in ("vgg_l", "resnet_l"):
        (runs / name).mkdir(parents=True)
        (runs / name / "best.pt").write_bytes(b"")
    stage2 = cfg_of(_train_command("kd_vgg_l", "pack.npz", runs, 150, smoke=False, epochs=60, stage2=True))
    assert stage2["init_from"] == str(runs / "vgg_l" / "best.pt") and stage2["train"]["epochs"] == 60
    assert stage2["distill"]["teachers"] == [str(runs / t / "best.pt") for t in ("vgg_l", "resnet_l")]
    pinned = cfg_of(_train_command("kd_vgg_l", "pack.npz", runs, 150, smoke=False, epochs=0, stage2=True))
    assert pinned["train"]["epochs"] == 27 and pinned["train"]["stop_epoch"] == 0
    # The face-pretrained teacher reads its start from wherever the GPU machine received it.
    face = cfg_of(_train_command("ft_facenet", "pack.npz", runs, 330, smoke=False, backbone="in/body.pt"))
    assert face["init_backbone"] == {"path": "in/body.pt", "prefix": "body.", "recalibrate_bn": 512}
    assert "init_backbone.path=in/body.pt" not in _train_command("vgg_l", "p", runs, 1, False, backbone="in/body.pt")


def test_interrupted_run_resumes_to_the_same_state(tmp_path):
    from training.train import train

    extra = [*TINY_NET, "train.epochs=2", "mix={cutmix_alpha: 1.0, mixup_alpha: 0.2, prob: 0.5}", "train.ema_decay=0.9"]
    straight = _fixture_cfg(tmp_path / "a", CONFIGS[0], extra)
    train(straight)
    interrupted = _fixture_cfg(tmp_path / "b", CONFIGS[0], extra)
    train(interrupted, max_epochs_this_run=1)
    assert torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=False)["epoch"] == 0
    train(interrupted)  # same command again: continues from last.pt
    a = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 1
    for key in ("model", "ema"):
        for k, v in a[key].items():
            assert torch.equal(v, b[key][k]), (key, k)
    drop = ("epoch_s", "elapsed_s")
    assert [{k: v for k, v in h.items() if k not in drop} for h in a["history"]] == [
        {k: v for k, v in h.items() if k not in drop} for h in b["history"]
    ]


# --- export, evaluate CLI, app loader ----------------------------------------------------------------


def test_evaluate_cli_prints_json_last_and_draws_the_matrix(tmp_path, capsys):
    from training.evaluate import main as evaluate_main
    from training.export import export
    from training.train import train

    train(_fixture_cfg(tmp_path, None, TINY_NET))
    shipped = tmp_path / "emotion_tiny.pt"
    export([tmp_path / "run" / "best.pt"], shipped)
    capsys.readouterr()
    evaluate_main(["--data", str(FACES), "--weights", str(shipped), "--tta", "crops", "--out", str(tmp_path / "ev")])
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["n"] == 70 and 0 <= result["accuracy"] <= 1 and 0 <= result["macro_f1"] <= 1
    assert len(result["confusion_matrix"]) == 7 and sum(map(sum, result["confusion_matrix"])) == 70
    assert (tmp_path / "ev" / "confusion_matrix.png").stat().st_size > 1000
    assert any("macro" in line for line in lines[:-1])  # the human-readable report comes first

    from models.classlens_emotion import load_weights_file

    model = load_weights_file(str(shipped), "tiny")
    probs = model.predict(read_image_folder(FACES).images[:5])
    assert probs.shape == (5, 7) and probs.dtype == np.float32 and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_evaluate_without_weights_uses_the_app_default_model(capsys):
    from models.emotion import DEFAULT_EMOTION_MODEL
    from training.evaluate import main as evaluate_main

    evaluate_main(["--data", str(FACES)])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["model"] == DEFAULT_EMOTION_MODEL and result["n"] == 70


def test_ensemble_export_averages_its_members(tmp_path):
    from training.evaluate import load_checkpoint_net
    from training.export import export
    from training.train import checkpoint_payload, load_config

    cfg = load_config(None, TINY_NET)
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = create_emotion_net(cfg["model"]["arch"], **cfg["model"]["kwargs"]).eval()
        paths.append(tmp_path / f"m{seed}.pt")
        torch.save(checkpoint_payload(net, cfg, {}), paths[-1])
    export(paths, tmp_path / "ens.pt", dtype=torch.float32)
    ens, _ = load_checkpoint_net(tmp_path / "ens.pt")
    members = [load_checkpoint_net(p)[0] for p in paths]
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        expected = torch.stack([m(x).softmax(1) for m in members]).mean(0)
        assert torch.allclose(ens(x).exp(), expected, atol=1e-5)
