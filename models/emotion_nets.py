"""Emotion network architectures, by name, shared by training/ and the app's loaders.

Every network takes (N, 1, S, S) grayscale in [0, 1] and returns (N, 7) logits in `EMOTIONS`
order; input normalisation is the first layer, so a checkpoint carries everything a loader needs.
`create_emotion_net(name, **kwargs)` builds one; `EMOTION_NETS` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

N_CLASSES = 7

# FER-2013 train-set pixel statistics (in [0, 1]), rounded; used by every architecture.
FER_MEAN = 0.508
FER_STD = 0.255

EMOTION_NETS: dict[str, Callable[..., nn.Module]] = {}


def register_net(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register an architecture factory under `name`."""

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        EMOTION_NETS[name] = factory
        return factory

    return deco


def create_emotion_net(name: str, **kwargs: object) -> nn.Module:
    """Build the named architecture with random weights."""
    if name not in EMOTION_NETS:
        raise KeyError(f"Unknown emotion net {name!r}; available: {', '.join(sorted(EMOTION_NETS))}")
    return EMOTION_NETS[name](**kwargs)


def fp32_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors cast to fp32 (weights files store fp16), the others as they are."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def load_net_file(path: str, map_location: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """The fp32 network of a training checkpoint (best.pt) or a `training.export` weights file, and
    the file's whole dict (arch, arch_kwargs, input_size, meta, ...)."""
    ck = torch.load(path, map_location=map_location, weights_only=True)
    net = create_emotion_net(ck["arch"], **ck.get("arch_kwargs", {}))
    net.load_state_dict(fp32_state(ck["state_dict"]))
    return net, ck


class Normalize(nn.Module):
    """(x - mean) / std with fixed scalars: inputs are [0, 1] grayscale."""

    def __init__(self, mean: float = FER_MEAN, std: float = FER_STD) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class _Wrapped(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.norm = Normalize()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.norm(x))


@register_net("resnet50_seed")
def resnet50_seed(n_classes: int = N_CLASSES, dropout: float = 0.3) -> nn.Module:
    """The seed's model: torchvision ResNet-50 (random init), 1-channel conv1, 2-layer head.

    conv1 keeps ResNet's 7x7 stride-2 shape with one input channel; the head is
    Linear(2048, 256)-ReLU-Dropout(0.3)-Linear(256, 7). At 48x48 the last stage sees 2x2.
    """
    from torchvision.models import resnet50

    net = resnet50(weights=None)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc = nn.Sequential(nn.Linear(2048, 256), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(256, n_classes))
    return _Wrapped(net)


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) with a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class FerResNet(nn.Module):
    """Compact ResNet for 48x48 faces: stem down to 24x24, four stages of basic blocks.

    Args:
        stem: "pool" = 3x3 conv (stem_width) + 2x2 max pool; "conv" = 3x3 conv (stem_width) at
            full resolution then a stride-2 3x3 conv to widths[0]; "full" = 3x3 conv to
            widths[0] and no downsampling, so the first stage runs at 48x48.
        widths: channels of the four stages (the first at 24x24, then 12, 6, 3; with the "full"
            stem at 48, 24, 12, 6).
        blocks: basic blocks per stage.
    """

    def __init__(
        self,
        n_classes: int = N_CLASSES,
        stem: str = "pool",
        stem_width: int = 32,
        widths: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (1, 1, 1, 1),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm = Normalize()
        if stem == "pool":
            self.stem = nn.Sequential(_conv_bn(1, stem_width), nn.MaxPool2d(2))
            cin = stem_width
        elif stem == "conv":
            self.stem = nn.Sequential(_conv_bn(1, stem_width), _conv_bn(stem_width, widths[0], stride=2))
            cin = widths[0]
        elif stem == "full":
            self.stem = _conv_bn(1, widths[0])
            cin = widths[0]
        else:
            raise ValueError(f"stem must be 'pool', 'conv' or 'full', not {stem!r}")
        stages = []
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            layers = []
            for j in range(n):
                layers.append(BasicBlock(cin, w, stride=2 if (i > 0 and j == 0) else 1))
                cin = w
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, n_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: blocks start as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(self.norm(x))))


@register_net("fer_resnet")
def fer_resnet(**kwargs: object) -> nn.Module:
    """`FerResNet` with explicit arguments (see its docstring)."""
    return FerResNet(**kwargs)  # type: ignore[arg-type]


@register_net("fer_resnet_s")
def fer_resnet_s(n_classes: int = N_CLASSES, dropout: float = 0.0) -> nn.Module:
    """4.9 M parameters: pool stem (32), one block per stage, widths 64-512."""
    return FerResNet(n_classes, stem="pool", stem_width=32, blocks=(1, 1, 1, 1), dropout=dropout)


@register_net("fer_resnet_m")
def fer_resnet_m(n_classes: int = N_CLASSES, dropout: float = 0.2) -> nn.Module:
    """11 M parameters: conv stem (32 at 48x48, stride 2 to 64), two blocks per stage, widths 64-512."""
    return FerResNet(n_classes, stem="conv", stem_width=32, blocks=(2, 2, 2, 2), dropout=dropout)


@register_net("fer_resnet_l")
def fer_resnet_l(n_classes: int = N_CLASSES, dropout: float = 0.2) -> nn.Module:
    """11 M parameters, ResNet-18 layout at full resolution: stages at 48, 24, 12, 6 px."""
    return FerResNet(n_classes, stem="full", blocks=(2, 2, 2, 2), dropout=dropout)


class FerVGG(nn.Module):
    """VGG-style net at full resolution: per stage `convs` 3x3 conv-BN-ReLU then 2x2 max pool
    (48 -> 24 -> 12 -> 6 -> 3), global average pool, dropout, linear."""

    def __init__(
        self,
        n_classes: int = N_CLASSES,
        widths: Sequence[int] = (64, 128, 256, 512),
        convs: int = 2,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.norm = Normalize()
        layers: list[nn.Module] = []
        cin = 1
        for w in widths:
            for _ in range(convs):
                layers.append(_conv_bn(cin, w))
                cin = w
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, n_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.norm(x)))


@register_net("fer_vgg")
def fer_vgg(n_classes: int = N_CLASSES, dropout: float = 0.3, width: int = 64, convs: int = 2) -> nn.Module:
    """4.7 M parameters at width 64 (stages 64-128-256-512, two convs each, at 48/24/12/6 px)."""
    return FerVGG(n_classes, widths=tuple(width * 2**i for i in range(4)), convs=convs, dropout=dropout)


# InceptionResnetV1's identity head: modules facenet_fer drops (training.export.export_backbone too).
FACENET_IDENTITY_HEAD = ("avgpool_1a", "dropout", "last_linear", "last_bn", "logits")


class FaceNetFER(nn.Module):
    """facenet-pytorch's InceptionResnetV1 body, a face-recognition network, with an expression head.

    The body starts from the CASIA-WebFace identity weights (`models/weights/generated/facenet_casia.pt`,
    built at install time; training loads them through the config's `init_backbone`), so the net
    starts from features of faces rather than from noise. Input as every net here: (N, 1, S, S)
    gray in [0, 1]; it is resized to `size` px, repeated to 3 channels and normalised as FaceNet
    expects ((pixel - 127.5) / 128); the body runs to block8 (1792 features, 22.6 M parameters).
    """

    def __init__(self, n_classes: int = N_CLASSES, size: int = 112, dropout: float = 0.3) -> None:
        super().__init__()
        from facenet_pytorch import InceptionResnetV1

        self.size = size
        body = InceptionResnetV1(pretrained=None, classify=False)
        for name in FACENET_IDENTITY_HEAD:
            if hasattr(body, name):
                delattr(body, name)
        self.body = body
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(1792, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = ((x * 255.0 - 127.5) / 128.0).expand(-1, 3, -1, -1)
        for stage in self.body.children():
            x = stage(x)
        return self.head(x)


@register_net("facenet_fer")
def facenet_fer(n_classes: int = N_CLASSES, size: int = 112, dropout: float = 0.3) -> nn.Module:
    """22.6 M parameters; fine-tuned from face-recognition weights (a teacher: ~45 MB in fp16)."""
    return FaceNetFER(n_classes, size=size, dropout=dropout)


class Ensemble(nn.Module):
    """Mean of the members' softmax probabilities, returned as log-probabilities (logits-like)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([m(x).float().softmax(dim=1) for m in self.members]).mean(dim=0)
        return probs.clamp_min(1e-12).log()


@register_net("ensemble")
def ensemble(members: Sequence[dict]) -> nn.Module:
    """Several nets averaged; `members` = [{"arch": name, "arch_kwargs": {...}}, ...]."""
    return Ensemble([create_emotion_net(m["arch"], **m.get("arch_kwargs", {})) for m in members])
