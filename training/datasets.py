"""Face-expression datasets as in-memory uint8 arrays in the 7 FER-2013 classes.

Readers (all return a `FaceSet`):
- `read_image_folder(DIR)`: `DIR/<class>/*.{jpg,png}`; class names are FER-2013's or a known
  alias (CK+ `anger`, `sadness`, ...); CK+ `contempt` has no FER class and is DROPPED (counted).
- `read_fer_layout(ROOT, split)`: the Kaggle layout `ROOT/train|publictest/<class>/`.
- `read_fer_csv(fer2013.csv, usage)`: the original challenge CSV (emotion,pixels,Usage).
- `read_pack(file.npz, split)`: our packed arrays (`pack_splits`), for moving data to a GPU machine.
- `read_tar(file.tar, split)`: class folders inside a tar (fer2013.tar, ckplus48.tar), unextracted.
- `load_source(path, split)`: any of these from a path.
`merge` concatenates sets; `balanced_indices` oversamples small classes (the seed's class
balancing, done with online augmentation so no augmented copy ever lands in a validation split).
"""

from __future__ import annotations

import csv
import itertools
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.faces import EMOTIONS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

# Folder names seen in public expression datasets -> FER-2013 class (None = no FER class: dropped).
CLASS_ALIASES: dict[str, str | None] = {
    **{e: e for e in EMOTIONS},
    "anger": "angry",
    "sadness": "sad",
    "happiness": "happy",
    "surprised": "surprise",
    "fearful": "fear",
    "disgusted": "disgust",
    "neutrality": "neutral",
    "contempt": None,  # CK+ only; FER-2013 has no such class
}

# Kaggle folder names of the FER-2013 splits and the CSV `Usage` values they come from.
FER_SPLITS = {"train": "Training", "publictest": "PublicTest"}


@dataclass
class FaceSet:
    """Grayscale faces with FER-2013 labels.

    Attributes:
        images: (N, S, S) uint8.
        labels: (N,) int64 indices into `EMOTIONS`.
        dropped: images skipped per folder name that has no FER class (e.g. {"contempt": 54}).
        encoded: the source files' bytes, when read from files (a pack then keeps them as they are).
    """

    images: np.ndarray
    labels: np.ndarray
    dropped: dict[str, int] = field(default_factory=dict)
    encoded: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> np.ndarray:
        """(7,) images per class."""
        return np.bincount(self.labels, minlength=len(EMOTIONS))


def fer_class(folder_name: str) -> str | None:
    """FER-2013 class of a dataset folder name (None: dropped).

    Raises:
        ValueError: the name is neither a FER class nor a known alias.
    """
    key = folder_name.strip().lower()
    if key not in CLASS_ALIASES:
        raise ValueError(f"Folder {folder_name!r} is not a FER-2013 class ({', '.join(EMOTIONS)}) or known alias")
    return CLASS_ALIASES[key]


def _decode(blob: bytes, size: int = 48) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        im = im.convert("L")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def _from_members(members: list[tuple[str, str, bytes]], size: int, where: str) -> FaceSet:
    """FaceSet from (class folder, file name, bytes) triples, in sorted order."""
    images, labels, dropped, encoded = [], [], {}, []
    for folder, _, blob in sorted(members, key=lambda m: (m[0], m[1])):
        cls = fer_class(folder)
        if cls is None:
            dropped[folder] = dropped.get(folder, 0) + 1
            continue
        images.append(_decode(blob, size))
        labels.append(EMOTIONS.index(cls))
        encoded.append(blob)
    if not images:
        raise FileNotFoundError(f"No class folders with images under {where}")
    return FaceSet(np.stack(images), np.asarray(labels, dtype=np.int64), dropped, encoded)


def read_image_folder(directory: str | Path, size: int = 48) -> FaceSet:
    """Read `directory/<class>/*.{jpg,png}`, resizing to (size, size) where needed.

    Raises:
        FileNotFoundError: no images found.
    """
    directory = Path(directory)
    members = [
        (sub.name, f.name, f.read_bytes())
        for sub in directory.iterdir()
        if sub.is_dir()
        for f in sub.iterdir()
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    return _from_members(members, size, str(directory))


def read_tar(path: str | Path, split: str | None = None, size: int = 48) -> FaceSet:
    """Read a tar of class folders without extracting it.

    Args:
        split: keep only `.../<split>/<class>/<file>` (the Kaggle FER-2013 layout); None reads
            `.../<class>/<file>` (e.g. ckplus48.tar's CK+48/<class>/).
    """
    members = []
    with tarfile.open(path) as tar:
        for m in tar:
            parts = Path(m.name).parts
            if not m.isfile() or Path(m.name).suffix.lower() not in IMAGE_SUFFIXES or len(parts) < 2:
                continue
            if split is not None and (len(parts) < 3 or parts[-3] != split):
                continue
            members.append((parts[-2], parts[-1], tar.extractfile(m).read()))
    return _from_members(members, size, f"{path}" + (f":{split}" if split else ""))


def read_fer_layout(root: str | Path, split: str, size: int = 48) -> FaceSet:
    """Kaggle FER-2013 layout: `root/<split>/<class>/*.jpg` (root may hold a `fer2013/` folder)."""
    root = Path(root)
    if not (root / split).is_dir() and (root / "fer2013" / split).is_dir():
        root = root / "fer2013"
    return read_image_folder(root / split, size)


def read_fer_csv(path: str | Path, usage: str) -> FaceSet:
    """The original fer2013.csv (`emotion,pixels,Usage`; pixels = 2304 space-separated values).

    Args:
        usage: a `Usage` value ("Training", "PublicTest") or a split name ("train", "publictest").
    """
    usage = FER_SPLITS.get(usage, usage)
    images, labels = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["Usage"] != usage:
                continue
            px = np.asarray(row["pixels"].split(), dtype=np.uint8)
            side = round(len(px) ** 0.5)
            images.append(px.reshape(side, side))
            labels.append(int(row["emotion"]))
    if not images:
        raise ValueError(f"No rows with Usage={usage!r} in {path}")
    return FaceSet(np.stack(images), np.asarray(labels, dtype=np.int64))


def _png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def pack_splits(path: str | Path, splits: dict[str, FaceSet]) -> None:
    """Write sets into one .npz of encoded images: `<split>_bytes`, `<split>_offsets`, `<split>_y`.

    Images read from files keep their original bytes (FER-2013's JPEGs: 51 MB for train +
    publictest, where raw or zlib-compressed pixels take 73 MB); others are stored as PNG.
    Decoding gives exactly the pixels `read_image_folder` gives, with the same Pillow decoder.
    """
    arrays = {}
    for name, s in splits.items():
        blobs = s.encoded if s.encoded else [_png_bytes(im) for im in s.images]
        arrays[f"{name}_bytes"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        arrays[f"{name}_offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        arrays[f"{name}_y"] = s.labels
    np.savez(path, **arrays)


def read_pack(path: str | Path, split: str, size: int = 48) -> FaceSet:
    """One split of a `pack_splits` file, decoded (in threads) to (N, size, size) uint8."""
    from concurrent.futures import ThreadPoolExecutor

    with np.load(path) as z:
        if f"{split}_bytes" not in z:
            names = sorted({k.rsplit("_", 1)[0] for k in z.files})
            raise KeyError(f"{path} holds no split {split!r}; it has {names}")
        data, offsets, labels = z[f"{split}_bytes"].tobytes(), z[f"{split}_offsets"], z[f"{split}_y"]
    blobs = [data[a:b] for a, b in itertools.pairwise(offsets)]
    with ThreadPoolExecutor(8) as pool:
        images = list(pool.map(lambda b: _decode(b, size), blobs, chunksize=512))
    return FaceSet(np.stack(images), labels.astype(np.int64))


def load_source(path: str | Path, split: str | None = None, size: int = 48) -> FaceSet:
    """A dataset from a path of any supported kind.

    Args:
        path: a .npz pack, a fer2013.csv, a .tar of class folders (read without extracting), a
            Kaggle FER-2013 root (with `split` subfolders) or an image folder of class folders.
        split: "train" / "publictest" (FER layout, CSV, pack); None for a plain image folder.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return read_pack(path, split or "test", size)
    if path.suffix == ".csv":
        return read_fer_csv(path, split or "PublicTest")
    if path.suffix == ".tar":
        return read_tar(path, split, size)
    if split is not None:
        return read_fer_layout(path, split, size)
    return read_image_folder(path, size)


def merge(sets: list[FaceSet]) -> FaceSet:
    """Concatenate sets (all must share the image size)."""
    dropped: dict[str, int] = {}
    for s in sets:
        for k, v in s.dropped.items():
            dropped[k] = dropped.get(k, 0) + v
    return FaceSet(np.concatenate([s.images for s in sets]), np.concatenate([s.labels for s in sets]), dropped)


def balanced_indices(labels: np.ndarray, min_count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one epoch where every class appears at least `min_count` times.

    Classes below `min_count` are repeated (whole copies, then a random remainder); online
    augmentation makes the repeats differ. Larger classes keep all their images once.
    """
    out = []
    for c in range(len(EMOTIONS)):
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            continue
        if len(idx) < min_count:
            reps, rest = divmod(min_count, len(idx))
            idx = np.concatenate([np.tile(idx, reps), rng.choice(idx, rest, replace=False)])
        out.append(idx)
    return np.concatenate(out)


def class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights, n / (k * count_c), as sklearn's "balanced" (0 for empty classes)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    w = np.zeros_like(counts)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w.astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    """`python -m training.datasets --fer FER --ckplus CK --out pack.npz`: the pack a GPU run carries."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--fer", required=True, help="fer2013.tar, its extracted root, or fer2013.csv")
    ap.add_argument("--ckplus", help="ckplus48.tar or its CK+48 folder (contempt dropped)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    splits = {s: load_source(args.fer, s) for s in FER_SPLITS}
    if args.ckplus:
        splits["ckplus"] = load_source(args.ckplus)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pack_splits(args.out, splits)
    for name, s in splits.items():
        print(f"{name}: {len(s)} images, per class {s.counts().tolist()}, dropped {s.dropped}")
    print(f"{args.out}: {Path(args.out).stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
