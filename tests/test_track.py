"""The IoU tracker: ids across samples, motion prediction, gaps, resume state."""

from __future__ import annotations

from core.faces import FaceObservation
from core.track import IouTracker, TrackState


def _face(t: float, x: float, y: float = 100.0, side: float = 22.0) -> FaceObservation:
    return FaceObservation(int(t * 25), t, (x, y, x + side, y + side), 0.99)


def test_a_small_face_drifting_faster_than_its_iou_allows_keeps_its_id():
    """22 px wide, 12 px per 1-s sample: consecutive boxes overlap by IoU 0.29 (< 0.3), which
    split such faces into a new track every sample; the second-chance pass and then the motion
    prediction keep one track."""
    tracker = IouTracker(min_iou=0.3, max_gap_s=10.0)
    ids = [tracker.update([_face(t, 100 + 12 * t)])[0].track_id for t in range(12)]
    assert set(ids) == {1}
    assert tracker.tracks[1].velocity[0] > 10  # px/s, learnt from the moves


def test_a_face_faster_than_one_width_a_sample_is_caught_by_the_prediction():
    """40 px per sample (almost two widths): out of reach of the second chance; once the track
    has moved twice at that speed, its predicted box lands on the face."""
    tracker = IouTracker(min_iou=0.3, max_gap_s=10.0)
    tracker.update([_face(0, 100)])
    first = tracker.update([_face(1, 140)])[0].track_id
    tracker.tracks[first] = TrackState(first, tracker.tracks[first].box, 1.0, (40.0, 0.0))  # a known mover
    ids = [tracker.update([_face(t, 100 + 40 * t)])[0].track_id for t in range(2, 8)]
    assert set(ids) == {first}


def test_two_neighbours_keep_their_own_ids_and_a_newcomer_gets_a_new_one():
    tracker = IouTracker()
    for t in range(5):
        a, b = tracker.update([_face(t, 100), _face(t, 140)])
        assert (a.track_id, b.track_id) == (1, 2)
    (a, b, c) = tracker.update([_face(5, 100), _face(5, 140), _face(5, 400)])
    assert (a.track_id, b.track_id, c.track_id) == (1, 2, 3)


def test_a_face_back_after_the_gap_is_a_new_track_and_motion_is_not_extrapolated_far():
    tracker = IouTracker(max_gap_s=10.0)
    for t in range(3):
        tracker.update([_face(t, 100 + 5 * t)])
    assert tracker.update([_face(8, 110)])[0].track_id == 1  # 6 s later, about the same seat
    assert tracker.update([_face(30, 110)])[0].track_id == 2  # after the 10 s gap: new track


def test_followed_faces_update_the_motion_and_resumed_state_starts_still():
    tracker = IouTracker(state=[TrackState(7, (100.0, 100.0, 122.0, 122.0), 4.0)], next_id=8)
    assert tracker.tracks[7].velocity == (0.0, 0.0)
    (f,) = tracker.update([_face(5, 104)])
    assert f.track_id == 7
    tracker.observe([FaceObservation(150, 6.0, (114.0, 100.0, 136.0, 122.0), 0.9, track_id=7)])
    assert tracker.tracks[7].velocity[0] > 0 and tracker.tracks[7].last_t == 6.0
    assert tracker.update([_face(7, 126)])[0].track_id == 7
