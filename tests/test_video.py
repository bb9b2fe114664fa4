"""core.video: sampling by presentation time, codecs, rotation, and clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from core.errors import UnreadableVideo
from core.video import DecodeReport, probe, sample_frames
from tests.conftest import fixture


def _bad_file(tmp_path: Path, kind: str) -> Path:
    if kind == "empty":
        p = tmp_path / "lecture.mp4"
        p.write_bytes(b"")
    elif kind == "text":
        p = tmp_path / "notes.mp4"
        p.write_text("These are my lecture notes, not a video.\n" * 50)
    elif kind == "image_renamed":
        p = tmp_path / "photo.mp4"
        p.write_bytes(fixture("t1.jpg").read_bytes())
    elif kind == "missing":
        p = tmp_path / "gone.mp4"
    elif kind == "folder":
        p = tmp_path / "dir.mp4"
        p.mkdir()
    else:
        raise AssertionError(kind)
    return p


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "empty"),
        ("text", "not a video"),
        ("missing", "not found"),
        ("folder", "folder"),
    ],
)
def test_bad_files_raise_a_clear_error_naming_the_file(tmp_path, kind, message):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(UnreadableVideo) as err:
        list(sample_frames(path, 2.0))
    assert path.name in str(err.value)
    assert message in str(err.value)


def test_h264_is_sampled_at_two_per_second_by_presentation_time():
    report = DecodeReport()
    frames = list(sample_frames(fixture("WolfgangLanger_Pexels.mp4"), 2.0, report=report))
    times = np.array([f.t for f in frames])
    # 19.7 s at 2 per second: one frame in each half-second slot.
    assert len(frames) == 40
    assert np.all(np.diff(times) > 0.45) and np.all(np.diff(times) < 0.55)
    assert frames[0].rgb.shape == (360, 640, 3) and frames[0].rgb.dtype == np.uint8
    # Frame indices count decoded frames at 23.976 fps.
    assert abs(frames[10].index - round(frames[10].t * 24000 / 1001)) <= 1
    assert report.warnings == []


def test_hevc_mov_decodes():
    info = probe(fixture("face_noface.mov"))
    assert info.codec == "hevc" and (info.width, info.height) == (960, 540)
    frames = list(sample_frames(fixture("face_noface.mov"), 2.0))
    assert len(frames) == 13


def test_truncated_file_yields_the_decodable_part_and_a_warning(tmp_path):
    data = fixture("WolfgangLanger_Pexels.mp4").read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])
    report = DecodeReport()
    frames = list(sample_frames(half, 2.0, report=report))
    assert 5 < len(frames) < 40
    assert report.warnings and "truncated" in report.warnings[0]


def test_resume_skips_frames_up_to_the_committed_time():
    frames = list(sample_frames(fixture("WolfgangLanger_Pexels.mp4"), 2.0, after_t=9.5))
    assert frames[0].t > 9.5
    full = list(sample_frames(fixture("WolfgangLanger_Pexels.mp4"), 2.0))
    assert [f.index for f in frames] == [f.index for f in full if f.t > 9.5]


def test_still_image_is_one_frame():
    frames = list(sample_frames(fixture("t1.jpg"), 2.0))
    assert len(frames) == 1 and frames[0].t == 0.0


def _write_rotated(path: Path, src: Path, rotation: int) -> list[np.ndarray]:
    """Store the first second of `src` turned sideways (90° clockwise) with a display matrix that
    says "turn 90° counter-clockwise to show", as phones do. Returns the upright originals."""
    originals = []
    with av.open(str(src)) as inp, av.open(str(path), "w") as out:
        s_in = inp.streams.video[0]
        s_out = out.add_stream("libx264", rate=24)
        s_out.width, s_out.height, s_out.pix_fmt = s_in.height, s_in.width, "yuv420p"
        s_out.set_display_rotation(rotation)
        for i, frame in enumerate(inp.decode(s_in)):
            if i >= 24:
                break
            img = frame.to_ndarray(format="rgb24")
            originals.append(img)
            stored = np.ascontiguousarray(np.rot90(img, k=-1))  # 90° clockwise
            for packet in s_out.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                out.mux(packet)
        for packet in s_out.encode():
            out.mux(packet)
    return originals


def test_rotation_metadata_is_applied(tmp_path):
    path = tmp_path / "phone.mp4"
    originals = _write_rotated(path, fixture("WolfgangLanger_Pexels.mp4"), 90)
    info = probe(path)
    assert info.rotation == 90
    assert (info.width, info.height) == (640, 360)
    first = next(sample_frames(path, 2.0))
    assert first.rgb.shape == (360, 640, 3)
    # Upright again: the decoded frame matches the original picture (up to H.264 loss).
    err = np.abs(first.rgb.astype(int) - originals[0].astype(int)).mean()
    assert err < 8, err
