"""Identity within a lecture: sparse per-track face embeddings while analysing, then at the end
roster names for tracks, and merging of anonymous tracks of one person (a face lost and found).

Embeddings are taken for each track's first `first_k` samples and then every `every_s` seconds,
accumulated per student in the store while the analysis runs (so an interrupted run resumes),
and erased when the lecture is finished: only enrolled roster embeddings are kept long term.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.faces import FaceObservation
from core.store import Store


class IdentityAnalyser:
    """Sets `embedding` on the faces chosen for embedding (others keep None).

    Args:
        embedder: an object with `embed(image_rgb, boxes (N,4)) -> (N, 512)` (core.vision.identity.FaceEmbedder).
        first_k: embed this many first samples of every track.
        every_s: afterwards embed a track again when this many seconds have passed. The
            embedder is the costliest model per face (~50 ms on one core), and a track's first
            embeddings already serve roster matching and merging; a refresh a minute keeps a
            long track's mean current at ~1 s of CPU per 20 students per video minute.
    """

    def __init__(self, embedder: object, first_k: int = 3, every_s: float = 60.0) -> None:
        self.embedder = embedder
        self.first_k = first_k
        self.every_s = every_s
        self._count: dict[int, int] = {}
        self._last_t: dict[int, float] = {}

    def _wants(self, face: FaceObservation) -> bool:
        tid = face.track_id
        assert tid is not None
        n = self._count.get(tid, 0)
        return n < self.first_k or face.t - self._last_t.get(tid, -1e9) >= self.every_s

    def analyse(self, frames: list[tuple[np.ndarray, list[FaceObservation]]]) -> list[list[FaceObservation]]:
        out = []
        for rgb, faces in frames:
            pick = [i for i, f in enumerate(faces) if self._wants(f)]
            faces = list(faces)
            if pick:
                boxes = np.array([faces[i].box for i in pick], dtype=np.float32)
                emb = self.embedder.embed(rgb, boxes)  # type: ignore[attr-defined]
                for k, i in enumerate(pick):
                    tid = faces[i].track_id
                    assert tid is not None
                    self._count[tid] = self._count.get(tid, 0) + 1
                    self._last_t[tid] = faces[i].t
                    faces[i] = replace(faces[i], embedding=emb[k])
            out.append(faces)
        return out


def embedding_sums(faces: list[FaceObservation]) -> dict[int, tuple[np.ndarray, int]]:
    """Per track: (sum of the embeddings taken in this batch, how many)."""
    sums: dict[int, tuple[np.ndarray, int]] = {}
    for f in faces:
        if f.embedding is None or f.track_id is None:
            continue
        total, n = sums.get(f.track_id, (np.zeros_like(f.embedding, dtype=np.float32), 0))
        sums[f.track_id] = (total + f.embedding.astype(np.float32), n + 1)
    return sums


def finish_identities(store: Store, lecture_id: int) -> dict[int, str | None]:
    """Merge split anonymous tracks, name tracks that match the roster, renumber the rest.

    Tracks seen in the same frame are never merged. Returns representative id -> name or None.
    """
    from core.vision.identity import SAME_PERSON_THRESHOLD, cluster_tracks, match_to_roster, mean_embedding

    embeddings = store.student_embeddings(lecture_id)
    overlaps = store.query_df(
        "SELECT DISTINCT a.student_id AS a, b.student_id AS b FROM observations a JOIN observations b "
        "ON a.lecture_id = b.lecture_id AND a.frame_index = b.frame_index AND a.student_id < b.student_id "
        "WHERE a.lecture_id = ? AND coalesce(a.present, true) AND coalesce(b.present, true)",
        [lecture_id],
    )
    merge = cluster_tracks(
        {k: mean_embedding(v) for k, v in embeddings.items()},
        SAME_PERSON_THRESHOLD,
        cannot_link=list(zip(overlaps["a"].astype(int), overlaps["b"].astype(int), strict=True)),
    )
    roster = store.roster()
    names: dict[int, str | None] = {}
    reps = sorted(set(merge.values()))
    if roster and reps:
        groups = {r: [mean_embedding(embeddings[s]) for s, rr in merge.items() if rr == r] for r in reps}
        centres = np.stack([mean_embedding(np.stack(groups[r])) for r in reps])
        matched = match_to_roster(centres, roster, SAME_PERSON_THRESHOLD)
        # One name per lecture: if two tracks claim the same person, the closer one keeps it.
        from core.vision.identity import roster_distances

        roster_names, dist = roster_distances(centres, roster)
        taken: dict[str, tuple[float, int]] = {}
        for i, (r, name) in enumerate(zip(reps, matched, strict=True)):
            if name is None:
                continue
            d = float(dist[i, roster_names.index(name)])
            if name not in taken or d < taken[name][0]:
                taken[name] = (d, r)
        names = {r: name for name, (_, r) in taken.items()}
    store.finish_identities(lecture_id, merge, names)
    return names
