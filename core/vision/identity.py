"""Who is who: FaceNet embeddings, verification, roster matching and merging anonymous tracks.

Embeddings are 512-D and L2-normalised; two faces are the same person when the Euclidean
distance between their embeddings is below `SAME_PERSON_THRESHOLD` (calibrated on real photos,
see tests/test_identity.py and bench/faces_cost.py). No photo is kept anywhere by this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from core.errors import NoFaceInImage
from models.facenet import EMBEDDING_SIZE, INPUT_SIZE, load_facenet

# Euclidean distance between L2-normalised embeddings below which two faces are one person.
# Measured on 25 real faces of 11 people (tests/fixtures/identity: 28 same / 272 different pairs,
# `python -m bench.faces_cost`): same person 0.25–0.93, different people 1.01–1.64; 1.0 separates
# all of them (0.9 rejects one same pair, 1.1 accepts two different pairs).
SAME_PERSON_THRESHOLD = 1.0
# Context around the detector's box, in pixels of the 160-px crop (facenet-pytorch's `margin`).
CROP_MARGIN = 32

ImageInput = str | Path | np.ndarray


class FaceEmbedder:
    """InceptionResnetV1 (CASIA-WebFace) over face boxes of an RGB image.

    Args:
        model: an eval() module mapping (N, 3, 160, 160) normalised crops to (N, 512) embeddings;
            the shipped FaceNet when None.
        margin: context added around each box, in pixels of the final 160-px crop.
    """

    def __init__(self, model: torch.nn.Module | None = None, margin: int = CROP_MARGIN) -> None:
        self.model = model if model is not None else load_facenet()
        self.margin = int(margin)

    def crops(self, image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Square face crops as the model sees them.

        Args:
            image_rgb: (H, W, 3) uint8.
            boxes: (N, 4) x1, y1, x2, y2 pixels.

        Returns:
            (N, 160, 160, 3) uint8 crops (box plus margin, clipped to the image, resized).
        """
        h, w = image_rgb.shape[:2]
        out = np.zeros((len(boxes), INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, float).reshape(-1, 4)):
            # Same geometry as facenet_pytorch.MTCNN(margin=...): margin is in output pixels.
            mx = self.margin * (x2 - x1) / (INPUT_SIZE - self.margin)
            my = self.margin * (y2 - y1) / (INPUT_SIZE - self.margin)
            left, top = int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0))
            right, bottom = int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h))
            if right - left < 2 or bottom - top < 2:
                continue  # a degenerate box embeds a black crop rather than failing the batch
            face = image_rgb[top:bottom, left:right]
            shrink = face.shape[0] > INPUT_SIZE or face.shape[1] > INPUT_SIZE
            out[i] = cv2.resize(
                face, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            )
        return out

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Embed (N, 160, 160, 3) uint8 RGB crops; returns (N, 512) float32 unit vectors."""
        if len(crops) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        x = torch.from_numpy(np.require(crops, np.uint8, ["C", "W"])).permute(0, 3, 1, 2).float()
        x = (x - 127.5) / 128.0
        with torch.inference_mode():
            emb = self.model(x)
        return torch.nn.functional.normalize(emb.float(), dim=1).numpy()

    def embed(self, image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Embed the faces at `boxes` ((N, 4) xyxy pixels) of an (H, W, 3) uint8 RGB image.

        Returns:
            (N, 512) float32 L2-normalised embeddings, one batched forward pass.
        """
        return self.embed_crops(self.crops(image_rgb, boxes))


@lru_cache(maxsize=1)
def default_embedder() -> FaceEmbedder:
    """The shared FaceNet embedder (loaded once; forward passes are thread-safe in eval mode)."""
    return FaceEmbedder()


class LazyEmbedder:
    """Stands for `default_embedder()` and loads it at the first face to embed: FaceNet (94 MB of
    weights) only runs when a roster is enrolled, so an analysis without one never loads it."""

    def embed(self, image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return default_embedder().embed(image_rgb, boxes)


def embed_faces(image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 512) float32 L2-normalised embeddings of the faces at `boxes` ((N, 4) xyxy pixels)."""
    return default_embedder().embed(image_rgb, boxes)


def load_rgb(image: ImageInput) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path (EXIF orientation applied, alpha dropped) or an array."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB array, got shape {image.shape}")
        return np.ascontiguousarray(image, dtype=np.uint8)
    from PIL import Image, ImageOps

    with Image.open(image) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


@lru_cache(maxsize=1)
def _photo_detector() -> object:
    from core.vision.detect import MTCNNDetector

    return MTCNNDetector(min_face=20, max_side=1280, threshold=0.9)


def detect_face_boxes(image_rgb: np.ndarray) -> np.ndarray:
    """All face boxes of a still photo, (N, 4) xyxy pixels, largest first.

    The one place where this module calls a face detector (core.vision.detect's MTCNN adapter).
    """
    faces = _photo_detector().detect(image_rgb)  # type: ignore[attr-defined]
    boxes = np.array([f.box for f in faces], dtype=float).reshape(-1, 4)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[np.argsort(-areas, kind="stable")]


def embed_largest_face(image: ImageInput) -> np.ndarray:
    """(512,) float32 embedding of the largest face of a photo.

    Raises:
        NoFaceInImage: no face was detected.
    """
    rgb = load_rgb(image)
    boxes = detect_face_boxes(rgb)
    if len(boxes) == 0:
        name = f"{Path(image).name} " if not isinstance(image, np.ndarray) else ""
        raise NoFaceInImage(f"No face was found in the photo {name}— use a clear, front-facing picture.")
    return embed_faces(rgb, boxes[:1])[0]


def verify(a: ImageInput, b: ImageInput, threshold: float = SAME_PERSON_THRESHOLD) -> tuple[bool, float]:
    """Whether the largest faces of two photos (paths or RGB arrays) are the same person.

    Returns:
        (same_person, distance): distance is the Euclidean distance of the unit embeddings,
        in [0, 2]; same_person is distance < threshold.

    Raises:
        NoFaceInImage: either photo has no detectable face.
    """
    distance = float(np.linalg.norm(embed_largest_face(a) - embed_largest_face(b)))
    return distance < threshold, distance


def roster_distances(embeddings: np.ndarray, roster: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Distance of each face to each enrolled student (the nearest of their photos).

    Args:
        embeddings: (N, 512) unit embeddings.
        roster: name -> (k, 512) embeddings of that student's k photos (k >= 1).

    Returns:
        (names, distances): names in roster order and (N, len(names)) float32 distances.
    """
    names = list(roster)
    emb = np.asarray(embeddings, np.float32).reshape(-1, EMBEDDING_SIZE)
    out = np.full((len(emb), len(names)), np.inf, np.float32)
    for j, name in enumerate(names):
        enrolled = np.asarray(roster[name], np.float32).reshape(-1, EMBEDDING_SIZE)
        if len(enrolled) and len(emb):
            out[:, j] = np.linalg.norm(emb[:, None, :] - enrolled[None, :, :], axis=2).min(axis=1)
    return names, out


def match_to_roster(
    embeddings: np.ndarray, roster: dict[str, np.ndarray], threshold: float = SAME_PERSON_THRESHOLD
) -> list[str | None]:
    """Name of the nearest enrolled student for each face, or None when nobody is within `threshold`.

    Args:
        embeddings: (N, 512) unit embeddings (e.g. one per track, averaged and re-normalised).
        roster: name -> (k, 512) embeddings of that student's photos.
        threshold: largest accepted Euclidean distance.
    """
    names, dist = roster_distances(embeddings, roster)
    if not names:
        return [None] * len(dist)
    best = dist.argmin(axis=1)
    return [names[j] if dist[i, j] < threshold else None for i, j in enumerate(best)]


def mean_embedding(embeddings: np.ndarray) -> np.ndarray:
    """(512,) unit vector summarising (k, 512) or (512,) embeddings of one face track."""
    emb = np.asarray(embeddings, np.float32).reshape(-1, EMBEDDING_SIZE)
    mean = emb.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def cluster_tracks(
    track_embeddings: dict[int, np.ndarray],
    threshold: float = SAME_PERSON_THRESHOLD,
    cannot_link: Iterable[tuple[int, int]] = (),
) -> dict[int, int]:
    """Merge tracks of the same person (a face lost and found again) by embedding.

    Average-linkage agglomerative clustering of the tracks' mean embeddings, stopping when the
    closest two groups are `threshold` apart or more.

    Args:
        track_embeddings: track id -> (k, 512) or (512,) embeddings of that track.
        threshold: largest average Euclidean distance between two groups that are merged.
        cannot_link: pairs of track ids that must stay apart (e.g. seen in the same frame).

    Returns:
        track id -> representative track id (the smallest id of its group), for every track.
    """
    ids = sorted(track_embeddings)
    if not ids:
        return {}
    centres = np.stack([mean_embedding(track_embeddings[t]) for t in ids]).astype(np.float64)
    # |a - b| from the Gram matrix: O(n^2) memory. (Broadcasting a - b over all pairs held
    # n x n x 512 numbers: 4.4 GB for the ~1,000 tracks of an hour-long lecture.)
    sq = np.einsum("ij,ij->i", centres, centres)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * centres @ centres.T, 0.0))
    index = {t: i for i, t in enumerate(ids)}
    forbidden = np.zeros_like(dist, dtype=bool)
    for a, b in cannot_link:
        if a in index and b in index:
            forbidden[index[a], index[b]] = forbidden[index[b], index[a]] = True
    np.fill_diagonal(dist, np.inf)
    dist[forbidden] = np.inf
    size = np.ones(len(ids))
    members: dict[int, list[int]] = {i: [i] for i in range(len(ids))}
    while True:
        flat = int(np.argmin(dist))
        a, b = divmod(flat, len(ids))
        if not np.isfinite(dist[a, b]) or dist[a, b] >= threshold:
            break
        # Lance–Williams update for average linkage; a forbidden pair poisons the whole group.
        merged = (size[a] * dist[a] + size[b] * dist[b]) / (size[a] + size[b])
        merged[forbidden[a] | forbidden[b]] = np.inf
        forbidden[a] |= forbidden[b]
        forbidden[:, a] = forbidden[a]
        dist[a], dist[:, a] = merged, merged
        dist[a, a] = np.inf
        dist[b], dist[:, b] = np.inf, np.inf
        size[a] += size[b]
        members[a] += members.pop(b)
    out: dict[int, int] = {}
    for group in members.values():
        representative = min(ids[i] for i in group)
        out.update({ids[i]: representative for i in group})
    return out
