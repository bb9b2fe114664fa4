"""Identity: real faces of real people match themselves and nobody else (tests/fixtures/identity)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from core.errors import NoFaceInImage, WeightsMissing
from core.vision.identity import (
    SAME_PERSON_THRESHOLD,
    cluster_tracks,
    default_embedder,
    detect_face_boxes,
    embed_faces,
    embed_largest_face,
    load_rgb,
    match_to_roster,
    verify,
)

FIXTURES = Path(__file__).parent / "fixtures" / "identity"
FACES = sorted(FIXTURES.glob("*.jpg"))


def person(path: Path) -> str:
    return path.stem.removeprefix("aligned_").rsplit("_", 1)[0]


@pytest.fixture(scope="module")
def embeddings() -> dict[str, np.ndarray]:
    """file stem -> (512,) embedding of the fixture's face (aligned crops are embedded as is)."""
    out = {}
    for path in FACES:
        if path.stem.startswith("aligned_"):
            out[path.stem] = default_embedder().embed_crops(load_rgb(path)[None])[0]
        else:
            out[path.stem] = embed_largest_face(path)
    return out


def test_fixture_set_is_the_documented_one() -> None:
    people = {person(p) for p in FACES}
    assert len(FACES) == 25 and len(people) == 11


def test_embeddings_are_unit_512_float32(embeddings: dict[str, np.ndarray]) -> None:
    e = np.stack(list(embeddings.values()))
    assert e.shape == (25, 512) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_same_people_match_and_different_people_do_not(embeddings: dict[str, np.ndarray]) -> None:
    same, different = [], []
    for a, b in itertools.combinations(sorted(embeddings), 2):
        d = float(np.linalg.norm(embeddings[a] - embeddings[b]))
        (same if person(Path(a)) == person(Path(b)) else different).append((d, a, b))
    assert len(same) == 28 and len(different) == 272
    false_rejects = [s for s in same if s[0] >= SAME_PERSON_THRESHOLD]
    false_accepts = [s for s in different if s[0] < SAME_PERSON_THRESHOLD]
    assert not false_rejects, f"same person judged different: {false_rejects}"
    assert not false_accepts, f"different people judged same: {false_accepts}"
    # The populations are well apart, not just split by a lucky threshold.
    assert np.mean([s[0] for s in same]) < 0.8 < 1.3 < np.mean([s[0] for s in different])


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("obama_1.jpg", "obama_3.jpg", True),  # different photos, years apart
        ("kit_harington_1.jpg", "kit_harington_4.jpg", True),  # costume vs red carpet
        ("obama_1.jpg", "biden_1.jpg", False),
        ("rose_leslie_1.jpg", "kit_harington_4.jpg", False),
    ],
)
def test_verify_paths(a: str, b: str, same: bool) -> None:
    result, distance = verify(FIXTURES / a, FIXTURES / b)
    assert result is same
    assert 0.0 <= distance <= 2.0
    assert (distance < SAME_PERSON_THRESHOLD) is same


def test_verify_accepts_rgb_arrays_and_is_symmetric() -> None:
    a, b = load_rgb(FIXTURES / "biden_1.jpg"), load_rgb(FIXTURES / "biden_2.jpg")
    same_ab, d_ab = verify(a, b)
    same_ba, d_ba = verify(b, a)
    assert same_ab and same_ba
    assert d_ab == pytest.approx(d_ba, abs=1e-5)


def test_verify_without_a_face_raises_a_teacher_readable_error() -> None:
    blank = np.full((240, 320, 3), 127, np.uint8)
    with pytest.raises(NoFaceInImage, match="No face"):
        verify(blank, FIXTURES / "obama_1.jpg")


def test_batched_embedding_equals_one_by_one() -> None:
    rgb = load_rgb(FIXTURES / "kit_harington_4.jpg")  # Kit and (at the edge) Rose
    boxes = detect_face_boxes(rgb)
    assert len(boxes) >= 1
    boxes = np.concatenate([boxes, boxes[:1] + 3.0])  # a second, shifted box of the same face
    together = embed_faces(rgb, boxes)
    alone = np.stack([embed_faces(rgb, b[None])[0] for b in boxes])
    assert together.shape == (len(boxes), 512)
    np.testing.assert_allclose(together, alone, atol=1e-4)
    assert np.linalg.norm(together[0] - together[-1]) < 0.3  # a 3-px shift is the same face


def test_degenerate_and_empty_boxes() -> None:
    rgb = load_rgb(FIXTURES / "obama_1.jpg")
    assert embed_faces(rgb, np.zeros((0, 4))).shape == (0, 512)
    out = embed_faces(rgb, np.array([[10.0, 10.0, 10.5, 10.5]]))  # smaller than a pixel
    assert out.shape == (1, 512) and np.all(np.isfinite(out))


def test_roster_of_real_people(embeddings: dict[str, np.ndarray]) -> None:
    roster = {
        "Barack": np.stack([embeddings["obama_1"], embeddings["obama_2"]]),
        "Joe": embeddings["biden_1"][None],
        "Alex": np.stack([embeddings["alex_lacamoire_1"]]),
    }
    queries = ["obama_4", "biden_3", "alex_lacamoire_2", "kit_harington_1", "aligned_paul_rudd_1"]
    names = match_to_roster(np.stack([embeddings[q] for q in queries]), roster)
    assert names == ["Barack", "Joe", "Alex", None, None]


@pytest.mark.parametrize(
    ("query", "roster", "threshold", "expected"),
    [
        ([[1, 0]], {"a": [[1, 0]], "b": [[0, 1]]}, 1.0, ["a"]),  # exact match
        ([[0.6, 0.8]], {"a": [[1, 0]], "b": [[0, 1]]}, 1.0, ["b"]),  # nearest wins (0.63 < 0.89)
        ([[-1, 0]], {"a": [[1, 0]], "b": [[0, 1]]}, 1.0, [None]),  # nobody within 1.0
        ([[1, 0], [0, 1]], {}, 1.0, [None, None]),  # empty roster
        ([[0, 1]], {"a": [[1, 0], [0, 1]]}, 0.5, ["a"]),  # any of a student's photos counts
    ],
)
def test_match_to_roster_table(query: list, roster: dict, threshold: float, expected: list) -> None:
    pad = lambda v: np.pad(np.asarray(v, np.float32), ((0, 0), (0, 510)))  # noqa: E731
    got = match_to_roster(pad(query), {k: pad(v) for k, v in roster.items()}, threshold)
    assert got == expected


def test_cluster_tracks_merges_the_same_person(embeddings: dict[str, np.ndarray]) -> None:
    e = embeddings
    tracks = {
        1: np.stack([e["obama_1"], e["obama_2"]]),
        2: e["biden_1"],
        3: e["obama_3"],
        4: np.stack([e["biden_2"], e["biden_3"]]),
        5: e["kit_harington_1"],
        7: e["rose_leslie_1"],
        9: e["kit_harington_2"],
    }
    assert cluster_tracks(tracks) == {1: 1, 3: 1, 2: 2, 4: 2, 5: 5, 9: 5, 7: 7}
    # Seen together in one frame: never merged, even though the faces match.
    apart = cluster_tracks(tracks, cannot_link=[(5, 9)])
    assert apart[5] == 5 and apart[9] == 9 and apart[3] == 1


def test_cluster_tracks_edge_cases() -> None:
    assert cluster_tracks({}) == {}
    v = np.eye(512, dtype=np.float32)
    assert cluster_tracks({4: v[0]}) == {4: 4}
    assert cluster_tracks({4: v[0], 2: v[0]}) == {2: 2, 4: 2}
    assert cluster_tracks({4: v[0], 2: v[1]}) == {2: 2, 4: 4}  # distance sqrt(2) > 1.0


def test_wrong_weights_are_refused(tmp_path: Path) -> None:
    from models.facenet import FACENET_CASIA_FILE, load_facenet

    (tmp_path / FACENET_CASIA_FILE).write_bytes(b"not a model")
    with pytest.raises(WeightsMissing, match="make setup"):
        load_facenet(directory=tmp_path)
    with pytest.raises(WeightsMissing, match="missing"):
        load_facenet(directory=tmp_path / "absent")


def test_merging_many_tracks_needs_memory_for_pairs_not_pairs_times_dimensions():
    """An hour-long lecture can hold ~1,000 track fragments: the pairwise distances must cost
    n^2 numbers (an n x n x 512 broadcast took 4.4 GB at the end of a 60-minute analysis)."""
    import tracemalloc

    from core.vision.identity import cluster_tracks

    rng = np.random.default_rng(0)
    people = rng.normal(size=(20, 512)).astype(np.float32)
    tracks = {i: people[i % 20] + rng.normal(scale=0.02, size=512).astype(np.float32) for i in range(1200)}
    tracemalloc.start()
    merged = cluster_tracks(tracks, 1.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 150 * 2**20, peak / 2**20  # 1200^2 float64 = 11.5 MB per matrix; the broadcast was 2.9 GB
    assert len(set(merged.values())) == 20  # fragments of one person merge, the 20 people stay apart
