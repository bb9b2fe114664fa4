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
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
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
            MTCNN's faces on the bench lecture) or "mtcnn" (the full MTCNN reference); see core.detect.
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

    def analysis_key(self) -> str:
        """JSON of the settings that change the observations (stored with the lecture)."""
        d = asdict(self)
        d.pop("batch_frames")
        d.pop("torch_threads")  # speed only, the observations are the same
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then environment variables, then explicit keyword overrides (None ignored)."""
        s = cls()
        env = {
            "fps": os.environ.get("CLASSLENS_FPS"),
            "min_face": os.environ.get("CLASSLENS_MIN_FACE"),
            "attention_only": os.environ.get("CLASSLENS_ATTENTION_ONLY"),
            "emotion_model": os.environ.get("CLASSLENS_EMOTION_MODEL"),
            "detector": os.environ.get("CLASSLENS_DETECTOR"),
            "person_side": os.environ.get("CLASSLENS_PERSON_SIDE"),
        }
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, object] = {}
        for key, raw in env.items():
            if raw is None or raw == "":
                continue
            t = str(types[key])
            if "bool" in t:
                values[key] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif "int" in t:
                values[key] = int(raw)
            elif "float" in t:
                values[key] = float(raw)
            else:
                values[key] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(s, **values)  # type: ignore[arg-type]


def db_path() -> Path:
    """The DuckDB file: $CLASSLENS_DB or data/classlens.duckdb."""
    return Path(os.environ.get("CLASSLENS_DB") or DEFAULT_DB)


def max_upload_mb() -> int:
    return int(os.environ.get("CLASSLENS_MAX_UPLOAD_MB", "2048"))
