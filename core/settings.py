"""All analysis settings in one frozen dataclass, overridable from the environment.

Environment variables (all optional):
    CLASSLENS_DB: DuckDB file (default data/classlens.duckdb).
    CLASSLENS_FPS: frames sampled per second of video (default 1).
    CLASSLENS_MIN_FACE: smallest face side in pixels that the detector looks for (default 16).
    CLASSLENS_ATTENTION_ONLY: "1" switches emotion inference off entirely.
    CLASSLENS_EMOTION_MODEL: name of the emotion model (see models.emotion).
    CLASSLENS_PERSON_SIDE: input side of the pose model that finds students (default 960).
    CLASSLENS_DETECTOR: face detector, "yunet" (default) or "mtcnn" (the slower reference).
    CLASSLENS_MAX_UPLOAD_MB: largest accepted video in MB (default 2048).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from core.errors import ClassLensError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_FPS = 60.0
"""Sampling more often than a video's own frame rate adds nothing; 60 covers every camera."""
MAX_MIN_FACE = 4096


class InvalidSettings(ClassLensError):
    """A setting (command-line option, environment variable or stored value) is out of range.

    Attributes:
        field: the Settings field at fault ("" when unknown).
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# field, kind, lower bound (value, "open" | "closed"), upper bound (inclusive), wording
_RANGES: tuple[tuple[str, str, tuple[float, str] | None, float | None, str], ...] = (
    ("fps", "float", (0, "open"), MAX_FPS, f"a number of frames per second above 0 and at most {MAX_FPS:g}"),
    ("min_face", "int", (1, "closed"), MAX_MIN_FACE, f"a whole number of pixels from 1 to {MAX_MIN_FACE}"),
    ("detect_max_side", "int", (0, "closed"), None, "0 or a whole number of pixels"),
    ("person_side", "int", (32, "closed"), 4096, "a whole number of pixels from 32 to 4096"),
    ("person_threshold", "float", (0, "open"), 1.0, "a score above 0 and at most 1"),
    ("det_threshold", "float", (0, "open"), 1.0, "a score above 0 and at most 1"),
    ("track_iou", "float", (0, "open"), 1.0, "an overlap above 0 and at most 1"),
    ("track_max_gap_s", "float", (0, "closed"), None, "0 or more seconds"),
    ("batch_frames", "int", (1, "closed"), None, "a whole number, 1 or more"),
    ("torch_threads", "int", (0, "closed"), None, "0 (automatic) or more threads"),
    ("front_yaw", "float", (-90, "closed"), 90.0, "an angle from -90 to 90 degrees"),
    ("front_pitch", "float", (-90, "closed"), 90.0, "an angle from -90 to 90 degrees"),
)


_ENV_NAMES = {
    "fps": "CLASSLENS_FPS",
    "min_face": "CLASSLENS_MIN_FACE",
    "attention_only": "CLASSLENS_ATTENTION_ONLY",
    "emotion_model": "CLASSLENS_EMOTION_MODEL",
    "detector": "CLASSLENS_DETECTOR",
    "person_side": "CLASSLENS_PERSON_SIDE",
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
DEFAULT_DB = PROJECT_ROOT / "data" / "classlens.duckdb"


@dataclass(frozen=True)
class Settings:
    """Analysis settings; stored with each lecture so a resumed run uses the same ones.

    Attributes:
        fps: frames sampled per second of video. 1 by default: attention is reported per minute
            and an eye closure counts from 1.5 s, so a sample a second per student is enough, and
            it halves the per-face work of the 2 samples a second used before (bench/speed.py).
        min_face: smallest face side in pixels (of the original frame) to detect.
        detect_max_side: frames are downscaled so their longer side is at most this before
            detection (0 = never), boxes are mapped back to full resolution.
        detector: "yunet" (YuNet proposals + MTCNN O-Net refinement, ~8x faster at 720p, 97% of
            MTCNN's faces on the bench lecture) or "mtcnn" (the full MTCNN reference); see core.vision.detect.
        person_side: the pose model (students) sees the frame scaled so its longer side is
            this many pixels (a multiple of 32); back-row students need 960-1280.
        person_threshold: least person score of a student.
        second_look: look again for a face in an upscaled crop of the head region of a student
            whose face the full-frame detector missed (small and turned faces).
        det_threshold: minimum detector score of a kept face.
        track_iou: minimum IoU between a student's last box and a new box to continue it.
        track_max_gap_s: a seat unseen for longer than this is given to a new student.
        attention_only: no emotion inference at all.
        emotion_model: registry name (None = default model).
        batch_frames: sampled frames per committed transaction (the resume granularity).
        torch_threads: intra-op threads torch may use in this process (0 = torch's default, one
            per core). 1 measured fastest on 2 shared cores: O-Net's and the per-face models' small
            ops spend more time synchronising two threads than computing (bench/speed.py).
        pose: estimate head pose and eye state (needed for a meaningful attention score).
        identify: when a roster is enrolled, embed faces to put names on students and merge
            split tracks of one person (without a roster nothing is embedded).
        front_yaw, front_pitch: the "front" head direction for attention, degrees; None = learnt
            from the class (median head direction of the lecture).
    """

    fps: float = 1.0
    min_face: int = 16
    detect_max_side: int = 1280
    detector: str = "yunet"
    person_side: int = 960
    person_threshold: float = 0.25
    second_look: bool = True
    det_threshold: float = 0.90
    track_iou: float = 0.3
    track_max_gap_s: float = 60.0
    attention_only: bool = False
    emotion_model: str | None = None
    batch_frames: int = 20
    torch_threads: int = 1
    pose: bool = True
    identify: bool = True
    front_yaw: float | None = None
    front_pitch: float | None = None

    def __post_init__(self) -> None:
        """Range checks (cheap, every time a Settings is made); names are checked by `validate`."""
        for name, kind, low, high, expected in _RANGES:
            value = getattr(self, name)
            if value is None and name.startswith("front_"):
                continue
            ok = _whole(value) if kind == "int" else _finite(value)
            if ok and low is not None:
                ok = value > low[0] if low[1] == "open" else value >= low[0]
            if ok and high is not None:
                ok = value <= high
            if not ok:
                raise InvalidSettings(
                    f"{name.replace('_', '-')} = {value!r} is not valid: it must be {expected}.", name
                )

    def validate(self) -> Settings:
        """Check the model names too (detector, emotion model); returns self.

        Raises:
            InvalidSettings: an unknown detector or emotion model name.
        """
        from core.vision.detect import DETECTORS

        if self.detector not in DETECTORS:
            raise InvalidSettings(
                f"detector = {self.detector!r} is not a known face detector; choose one of {', '.join(DETECTORS)}.",
                "detector",
            )
        if self.emotion_model is not None and not self.attention_only:
            from models.emotion import available_emotion_models

            names = available_emotion_models()
            if self.emotion_model not in names:
                raise InvalidSettings(
                    f"emotion model = {self.emotion_model!r} is not known; choose one of {', '.join(names)}.",
                    "emotion_model",
                )
        return self

    def analysis_key(self) -> str:
        """JSON of the settings that change the observations (stored with the lecture)."""
        d = asdict(self)
        d.pop("batch_frames")
        d.pop("torch_threads")  # speed only, the observations are the same
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then environment variables, then explicit keyword overrides (None ignored).

        Every value is checked here, before anything is written (see `validate`).

        Raises:
            InvalidSettings: a value that cannot be read or is out of range, naming its variable.
        """
        types = {f.name: str(f.type) for f in fields(cls)}
        values: dict[str, object] = {}
        for key, var in _ENV_NAMES.items():
            raw = os.environ.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[key] = _parse(var, raw.strip(), types[key])
        from_env = {k for k in values if overrides.get(k) is None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return replace(cls(), **values).validate()  # type: ignore[arg-type]
        except InvalidSettings as exc:
            if exc.field in from_env:  # say which environment variable to fix
                var = _ENV_NAMES[exc.field]
                raise InvalidSettings(f"{var}={os.environ.get(var)!r}: {exc}", exc.field) from None
            raise


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _whole(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _parse(var: str, raw: str, type_name: str) -> object:
    """An environment value as the field's type, or `InvalidSettings` naming the variable."""
    if "bool" in type_name:
        if raw.lower() in _TRUE or raw.lower() in _FALSE:
            return raw.lower() in _TRUE
        raise InvalidSettings(f"{var}={raw!r}: expected 1 or 0 (true or false).")
    try:
        if "int" in type_name:
            return int(raw)
        if "float" in type_name:
            return float(raw)
    except ValueError:
        kind = "a whole number" if "int" in type_name else "a number"
        raise InvalidSettings(f"{var}={raw!r}: expected {kind}.") from None
    return raw


def db_path() -> Path:
    """The DuckDB file: $CLASSLENS_DB or data/classlens.duckdb."""
    return Path(os.environ.get("CLASSLENS_DB") or DEFAULT_DB)


def max_upload_mb() -> int:
    raw = os.environ.get("CLASSLENS_MAX_UPLOAD_MB", "2048")
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSettings(f"CLASSLENS_MAX_UPLOAD_MB={raw!r}: expected a whole number of MB.") from None
    if value < 1:
        raise InvalidSettings(f"CLASSLENS_MAX_UPLOAD_MB={raw!r}: expected 1 or more MB.")
    return value
