"""Locating model files and checking their sha256 before use."""

from __future__ import annotations

import hashlib
from pathlib import Path

from models.errors import WeightsMissing

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def checked_path(name: str, sha256: str, directory: Path = WEIGHTS_DIR) -> Path:
    """Path of a weights file after verifying it exists and matches `sha256`.

    Raises:
        WeightsMissing: the file is absent or its checksum differs.
    """
    path = directory / name
    if not path.is_file():
        raise WeightsMissing(f"Model file {path} is missing; run `make setup` to restore it.")
    actual = sha256_of(path)
    if actual != sha256:
        raise WeightsMissing(
            f"Model file {path} has sha256 {actual[:12]}…, expected {sha256[:12]}…; "
            "it is corrupt or from another version. Run `make setup`."
        )
    return path
