"""Roster enrolment: a teacher names students with 1–5 photos each; only embeddings are kept."""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from core.errors import ClassLensError
from core.store import Store

MAX_PHOTOS = 5
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def photos_of(store: Store, name: str) -> int:
    """How many photos (embeddings) `name` has on the roster (0 = not enrolled)."""
    return int(store.roster_list().set_index("name")["photos"].get(name.strip(), 0)) if name.strip() else 0


def embed_photos(name: str, images: list[str | Path | np.ndarray]) -> np.ndarray:
    """(k, 512) embeddings of the largest face of each photo.

    Raises:
        ClassLensError: no photo, too many photos, or a photo without a face (named in the message).
    """
    from core.identity import embed_largest_face

    name = name.strip()
    if not images:
        raise ClassLensError(f"Give 1–{MAX_PHOTOS} photos of {name or 'the student'}.")
    if len(images) > MAX_PHOTOS:
        raise ClassLensError(f"{len(images)} photos of {name} were given; at most {MAX_PHOTOS} are kept.")
    embeddings = []
    for img in images:
        try:
            embeddings.append(embed_largest_face(img))
        except ClassLensError as exc:
            label = Path(img).name if isinstance(img, (str, Path)) else "a photo"
            raise ClassLensError(f"{label}: {exc}") from exc
    return np.stack(embeddings)


def enrol(store: Store, name: str, images: list[str | Path | np.ndarray], *, replace: bool = False) -> int:
    """Embed the largest face of each photo and add them to `name` (at most 5 in all), or with
    `replace` put them in place of the name's earlier photos. Returns the number of embeddings.

    Raises:
        ClassLensError: no photo, too many photos, or a photo without a face (named in the message).
    """
    name = name.strip()
    have = 0 if replace else photos_of(store, name)
    if images and have + len(images) > MAX_PHOTOS:
        raise ClassLensError(
            f"{name} would have {have + len(images)} photos; at most {MAX_PHOTOS} are kept. "
            "Replace their photos instead, or add fewer."
        )
    embeddings = embed_photos(name, images)
    store.roster_add(name, embeddings, replace=replace)
    return len(embeddings)


def read_zip(data: bytes | str | Path) -> dict[str, list[np.ndarray]]:
    """Photos from a zip laid out as `name/*.jpg` -> name -> RGB images."""
    src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    people: dict[str, list[np.ndarray]] = defaultdict(list)
    try:
        with zipfile.ZipFile(src) as zf:
            for info in zf.infolist():
                parts = Path(info.filename).parts
                if info.is_dir() or len(parts) < 2 or not info.filename.lower().endswith(_IMAGE_SUFFIXES):
                    continue
                if parts[0].startswith(("__MACOSX", ".")):
                    continue
                buf = np.frombuffer(zf.read(info), dtype=np.uint8)
                bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
                if bgr is None:
                    raise ClassLensError(f"{info.filename}: not a readable image.")
                people[parts[-2]].append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    except zipfile.BadZipFile as exc:
        raise ClassLensError("The roster file is not a zip archive of name/photo.jpg folders.") from exc
    if not people:
        raise ClassLensError("The zip holds no name/photo.jpg folders.")
    return dict(people)


def enrol_zip(store: Store, data: bytes | str | Path) -> dict[str, int]:
    """Enrol every `name/` folder of a zip; returns name -> photos added."""
    return {name: enrol(store, name, list(imgs)) for name, imgs in read_zip(data).items()}
