"""Roster enrolment: a teacher names students with 1–5 photos each; only embeddings are kept.

Enrolment is all or nothing: every photo of a call (or of a zip) is read and embedded first, and
the embeddings are written in one transaction only when all of them succeeded. Photos are read
through core.video's bounded image reader (header checked first, huge pictures downscaled or
refused); zip entries are read with a size cap, and names are cleaned before they are stored.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from collections import defaultdict
from pathlib import Path, PurePosixPath

import numpy as np

from core.errors import ClassLensError
from core.store import Store
from core.video import read_image

MAX_PHOTOS = 5
MAX_PHOTO_BYTES = 25 * 1024 * 1024
"""A roster photo (a zip entry) larger than this is refused unread: phone photos are 2–10 MB."""
MAX_ZIP_ENTRIES = 5000
MIN_PHOTO_SIDE = 20
"""Pixels: the photo face detector looks for faces of at least 20 px."""
MAX_NAME_LENGTH = 100
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

Photo = str | Path | bytes | np.ndarray


def clean_name(raw: str) -> str:
    """A student's name as stored: Unicode NFC, no control or invisible characters, single spaces.

    Raises:
        ClassLensError: empty after cleaning, '.' or '..', a path separator, or over 100 characters.
    """
    name = unicodedata.normalize("NFC", raw)
    name = "".join(ch if unicodedata.category(ch) not in ("Zs", "Zl", "Zp") else " " for ch in name)
    name = " ".join("".join(ch for ch in name if not unicodedata.category(ch).startswith("C")).split())
    if not name:
        raise ClassLensError("A roster name cannot be empty.")
    if name in (".", "..") or "/" in name or "\\" in name:
        raise ClassLensError(f"{raw!r} is not a usable name (no '/', '\\', '.' or '..').")
    if len(name) > MAX_NAME_LENGTH:
        raise ClassLensError(f"The name {name[:20]}… is longer than {MAX_NAME_LENGTH} characters.")
    return name


def photo_rgb(image: Photo, label: str) -> np.ndarray:
    """A roster photo (path, file bytes or RGB array) as (H, W, 3) uint8 RGB, checked and bounded.

    Raises:
        ClassLensError: unreadable, not an image, too many pixels or too small (message names `label`).
    """
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ClassLensError(f"{label}: expected a colour picture, got an array of shape {image.shape}.")
        rgb = np.ascontiguousarray(image, dtype=np.uint8)
    else:
        rgb, _ = read_image(image, label)  # UnreadableImage names the file
    if min(rgb.shape[:2]) < MIN_PHOTO_SIDE:
        raise ClassLensError(
            f"{label}: {rgb.shape[1]}x{rgb.shape[0]} pixels is too small for a face photo "
            f"(at least {MIN_PHOTO_SIDE} px a side)."
        )
    return rgb


def _label(image: Photo, index: int) -> str:
    return Path(image).name if isinstance(image, (str, Path)) else f"photo {index + 1}"


def _embed(rgb: np.ndarray, label: str) -> np.ndarray:
    from core.vision.identity import embed_largest_face

    try:
        return embed_largest_face(rgb)
    except ClassLensError as exc:
        raise ClassLensError(f"{label}: {exc}") from exc


def photos_of(store: Store, name: str) -> int:
    """How many photos (embeddings) `name` has on the roster (0 = not enrolled)."""
    return int(store.roster_list().set_index("name")["photos"].get(name.strip(), 0)) if name.strip() else 0


def _check_counts(store: Store, counts: dict[str, int], replace: bool = False) -> None:
    have = store.roster_list().set_index("name")["photos"]
    for name, n in counts.items():
        total = n if replace else int(have.get(name, 0)) + n
        if total > MAX_PHOTOS:
            raise ClassLensError(
                f"{name} would have {total} photos; at most {MAX_PHOTOS} are kept. "
                "Replace their photos instead, or add fewer."
            )


def embed_photos(name: str, images: list[Photo], labels: list[str] | None = None) -> np.ndarray:
    """(k, 512) embeddings of the largest face of each of 1–5 photos of `name` (nothing stored).

    Raises:
        ClassLensError: no photo, too many photos, or a photo that is unreadable or has no face
            (named in the message).
    """
    if not images:
        raise ClassLensError(f"Give 1–{MAX_PHOTOS} photos of {name or 'the student'}.")
    if len(images) > MAX_PHOTOS:
        raise ClassLensError(f"{len(images)} photos of {name} were given; at most {MAX_PHOTOS} are kept.")
    labels = labels or [_label(img, i) for i, img in enumerate(images)]
    return np.stack([_embed(photo_rgb(img, lab), lab) for img, lab in zip(images, labels, strict=True)])


def enrol(
    store: Store, name: str, images: list[Photo], labels: list[str] | None = None, *, replace: bool = False
) -> int:
    """Embed the largest face of each photo and add them to `name` (at most 5 in all), or with
    `replace` put them in place of the name's earlier photos.

    Args:
        images: paths, file bytes or RGB arrays.
        labels: how to name each photo in messages (default: its file name or "photo N").

    Returns:
        The number of embeddings added.

    Raises:
        ClassLensError: no photo, too many photos, or a photo that is unreadable or has no face
            (named in the message); nothing is added then.
    """
    name = clean_name(name)
    if not images:
        raise ClassLensError(f"Give 1–{MAX_PHOTOS} photos of {name}.")
    _check_counts(store, {name: len(images)}, replace)
    embeddings = embed_photos(name, images, labels)
    store.roster_add_many({name: embeddings}, replace=replace)
    return len(embeddings)


def _zip_entries(zf: zipfile.ZipFile, zip_name: str) -> dict[str, list[zipfile.ZipInfo]]:
    """name -> the photo entries of its folder, checked from the directory alone (nothing read)."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ClassLensError(f"{zip_name}: {len(infos)} entries is more than a roster zip holds ({MAX_ZIP_ENTRIES}).")
    people: dict[str, list[zipfile.ZipInfo]] = defaultdict(list)
    for info in infos:
        raw = info.filename.replace("\\", "/")
        parts = PurePosixPath(raw).parts
        if raw.startswith("/") or (parts and parts[0].endswith(":")) or ".." in parts:
            raise ClassLensError(
                f"{zip_name}: the entry {info.filename!r} points outside the zip; nothing was enrolled."
            )
        if info.is_dir() or len(parts) < 2 or not raw.lower().endswith(_IMAGE_SUFFIXES):
            continue
        if any(p.startswith(("__MACOSX", ".")) for p in parts):
            continue
        if info.file_size > MAX_PHOTO_BYTES:
            raise ClassLensError(
                f"{zip_name}: {info.filename} is {info.file_size / 2**20:.0f} MB; a roster photo must be under "
                f"{MAX_PHOTO_BYTES // 2**20} MB. Nothing was enrolled."
            )
        try:
            name = clean_name(parts[-2])
        except ClassLensError as exc:
            raise ClassLensError(f"{zip_name}: folder of {info.filename}: {exc} Nothing was enrolled.") from exc
        people[name].append(info)
    if not people:
        raise ClassLensError(f"{zip_name}: the zip holds no name/photo.jpg folders.")
    return dict(people)


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, zip_name: str) -> bytes:
    """An entry's bytes, never more than the cap (a header may understate the size)."""
    try:
        with zf.open(info) as f:
            data = f.read(MAX_PHOTO_BYTES + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise ClassLensError(f"{zip_name}: {info.filename} cannot be read ({exc}). Nothing was enrolled.") from exc
    if len(data) > MAX_PHOTO_BYTES:
        raise ClassLensError(
            f"{zip_name}: {info.filename} is over {MAX_PHOTO_BYTES // 2**20} MB; nothing was enrolled."
        )
    return data


def _zip_embeddings(data: bytes | str | Path, zip_name: str) -> dict[str, np.ndarray]:
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise ClassLensError(f"{zip_name}: {'is a folder' if path.is_dir() else 'file not found'} ({path}).")
    src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    try:
        with zipfile.ZipFile(src) as zf:
            people = _zip_entries(zf, zip_name)
            out = {}
            for name, infos in people.items():
                vectors = []
                for info in infos:
                    label = f"{zip_name}: {info.filename}"
                    try:
                        rgb = photo_rgb(_read_entry(zf, info, zip_name), label)
                        vectors.append(_embed(rgb, label))
                    except ClassLensError as exc:
                        raise ClassLensError(f"{exc} Nothing was enrolled.") from exc
                out[name] = np.stack(vectors)
            return out
    except zipfile.BadZipFile as exc:
        raise ClassLensError(f"{zip_name}: not a zip archive of name/photo.jpg folders.") from exc


def read_zip(data: bytes | str | Path, zip_name: str | None = None) -> dict[str, list[zipfile.ZipInfo]]:
    """The checked layout of a roster zip (`name/*.jpg`): name -> its photo entries (not read)."""
    zip_name = zip_name or (Path(data).name if isinstance(data, (str, Path)) else "the zip")
    src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    try:
        with zipfile.ZipFile(src) as zf:
            return _zip_entries(zf, zip_name)
    except zipfile.BadZipFile as exc:
        raise ClassLensError(f"{zip_name}: not a zip archive of name/photo.jpg folders.") from exc


def enrol_zip(store: Store, data: bytes | str | Path, zip_name: str | None = None) -> dict[str, int]:
    """Enrol every `name/` folder of a zip, all or nothing; returns name -> photos added."""
    return enrol_files(store, None, [], [data], zip_names=[zip_name] if zip_name else None)


def enrol_files(
    store: Store,
    name: str | None,
    photos: list[Photo],
    zips: list[bytes | str | Path],
    zip_names: list[str] | None = None,
    *,
    replace: bool = False,
) -> dict[str, int]:
    """Photos of `name` plus whole-class zips, all or nothing; returns name -> photos added.
    With `replace`, each enrolled name's earlier photos are replaced by the new ones.

    Raises:
        ClassLensError: any photo or entry unreadable, faceless, too large or too small, a bad
            name, or more than 5 photos for someone (the file is named); nothing is added then.
    """
    embeddings: dict[str, list[np.ndarray]] = defaultdict(list)
    if photos:
        if name is None:
            raise ClassLensError("Give the student's name with their photos.")
        who = clean_name(name)
        _check_counts(store, {who: len(photos)}, replace)
        for i, img in enumerate(photos):
            label = _label(img, i)
            embeddings[who].append(_embed(photo_rgb(img, label), label))
    names = zip_names or [Path(z).name if isinstance(z, (str, Path)) else "the zip" for z in zips]
    for z, zip_name in zip(zips, names, strict=True):
        for who, vectors in _zip_embeddings(z, zip_name).items():
            embeddings[who].extend(vectors)
    stacked = {who: np.stack(v) for who, v in embeddings.items()}
    _check_counts(store, {who: len(v) for who, v in stacked.items()}, replace)
    store.roster_add_many(stacked, replace=replace)
    return {who: len(v) for who, v in sorted(stacked.items())}
