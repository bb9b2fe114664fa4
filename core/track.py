"""Tracking: faces in successive sampled frames -> stable per-lecture track ids.

Greedy IoU matching with a centre-distance fallback against each track's predicted box (its last
box moved by its recent velocity, as in SORT), so a face that moves between two samples (1 s
apart by default; a 22 px back-row face drifting 10 px/s would otherwise lose its IoU) or leaves
and comes back to about the same seat within `max_gap_s` keeps its id. Each track becomes one
student of the lecture.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.faces import FaceObservation


@dataclass
class TrackState:
    """What the tracker remembers of one track (restorable from the store on resume)."""

    track_id: int
    box: tuple[float, float, float, float]
    last_t: float
    velocity: tuple[float, float] = (0.0, 0.0)  # box centre, pixels per second (0 after a resume)

    def predicted(self, t: float, horizon_s: float = 2.0) -> tuple[float, float, float, float]:
        """The box expected at time `t` (motion extrapolated at most `horizon_s` seconds)."""
        dt = min(max(t - self.last_t, 0.0), horizon_s)
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)

    def moved_to(self, box: tuple[float, float, float, float], t: float) -> TrackState:
        """This track seen at `box` at time `t`: velocity smoothed over the last two moves."""
        dt = t - self.last_t
        velocity = self.velocity
        if dt > 0:
            vx = ((box[0] + box[2]) - (self.box[0] + self.box[2])) / 2 / dt
            vy = ((box[1] + box[3]) - (self.box[1] + self.box[3])) / 2 / dt
            velocity = (0.5 * (self.velocity[0] + vx), 0.5 * (self.velocity[1] + vy))
        return TrackState(self.track_id, box, t, velocity)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N,4) against every box in b (M,4), xyxy -> (N, M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _centre_affinity(a: np.ndarray, b: np.ndarray, reach: float = 1.0) -> np.ndarray:
    """1 - centre distance / (reach x mean box side), clipped at 0; 0 for boxes of unlike size."""
    ca = (a[:, None, :2] + a[:, None, 2:]) / 2
    cb = (b[None, :, :2] + b[None, :, 2:]) / 2
    dist = np.linalg.norm(ca - cb, axis=2)
    side = ((a[:, None, 2] - a[:, None, 0]) + (b[None, :, 2] - b[None, :, 0])) / 2
    size_ratio = (a[:, None, 2] - a[:, None, 0]) / np.maximum(b[None, :, 2] - b[None, :, 0], 1e-9)
    ok = (size_ratio > 0.6) & (size_ratio < 1.6)
    return np.where(ok, np.clip(1 - dist / np.maximum(reach * side, 1e-9), 0, None), 0.0)


def _greedy(
    score: np.ndarray, floor: float, used_tracks: set[int], assigned: dict[int, int], live: list[TrackState]
) -> None:
    """Pair tracks (rows) and faces (columns) best score first, each once, while score >= floor."""
    order = np.dstack(np.unravel_index(np.argsort(-score, axis=None), score.shape))[0]
    for ti, fi in order:
        if score[ti, fi] < floor:
            break
        if ti in used_tracks or fi in assigned:
            continue
        used_tracks.add(int(ti))
        assigned[int(fi)] = live[ti].track_id


class IouTracker:
    """Assigns `track_id` to faces, frame by frame.

    Args:
        min_iou: least IoU (or centre affinity) to continue a track.
        max_gap_s: tracks unseen for longer are closed; a face there later gets a new id.
        state: tracks to continue (from a previous, interrupted run).
        next_id: first id for new tracks (ids start at 1).
    """

    def __init__(
        self,
        min_iou: float = 0.3,
        max_gap_s: float = 10.0,
        state: list[TrackState] | None = None,
        next_id: int = 1,
    ) -> None:
        self.min_iou = min_iou
        self.max_gap_s = max_gap_s
        self.tracks: dict[int, TrackState] = {s.track_id: s for s in state or []}
        self.next_id = max([next_id, *[s.track_id + 1 for s in state or []]])

    def update(self, faces: list[FaceObservation]) -> list[FaceObservation]:
        """Faces of one frame (same `t`) -> the same faces with `track_id` set."""
        if not faces:
            return []
        ids = self.assign([f.box for f in faces], faces[0].t)
        return [replace(face, track_id=tid) for face, tid in zip(faces, ids, strict=True)]

    def assign(self, boxes: list[tuple[float, float, float, float]], t: float) -> list[int]:
        """Boxes of one frame at time `t` -> a track id for each (new ids for new tracks)."""
        if not boxes:
            return []
        live = [s for s in self.tracks.values() if t - s.last_t <= self.max_gap_s]
        arr = np.array(boxes, dtype=float)
        assigned: dict[int, int] = {}
        if live:
            prev = np.array([s.predicted(t) for s in live], dtype=float)
            score = np.maximum(iou_matrix(prev, arr), 0.5 * _centre_affinity(prev, arr))
            used_tracks: set[int] = set()
            _greedy(score, self.min_iou, used_tracks, assigned, live)
            # Second chance for what is left (as ByteTrack does with its leftovers): a box within
            # one box width of a track's predicted place, of a similar size, is that track. Small
            # back-row faces that moved more than IoU tolerates are kept this way; seats are
            # further apart than a face width.
            _greedy(_centre_affinity(prev, arr, reach=1.0), 1e-9, used_tracks, assigned, live)
        out = []
        for bi, box in enumerate(boxes):
            tid = assigned.get(bi)
            if tid is None:
                tid = self.next_id
                self.next_id += 1
            known = self.tracks.get(tid)
            self.tracks[tid] = known.moved_to(box, t) if known is not None else TrackState(tid, box, t)
            out.append(tid)
        return out

    def observe(self, faces: list[FaceObservation]) -> None:
        """Record where already-identified faces are now (faces followed between detections)."""
        for face in faces:
            assert face.track_id is not None
            known = self.tracks.get(face.track_id)
            self.tracks[face.track_id] = (
                known.moved_to(face.box, face.t) if known is not None else TrackState(face.track_id, face.box, face.t)
            )
