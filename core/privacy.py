"""Privacy settings, retention purge, deletion and the opt-in blurred thumbnails (no Streamlit).

The app's preferences live in a small JSON file next to the database (`<db>.settings.json`), so
they travel with the data they govern and can be read or edited without DuckDB. Thumbnails are
only written when the teacher opts in, blurred, into `<db folder>/thumbnails/<lecture id>/`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from core.store import Store

STORED_STATEMENT = """\
**What ClassLens stores** (in one DuckDB file on this computer, `{db}`):

- per lecture: the file name, its checksum, duration, frame rate, the analysis settings and status;
- per student: an anonymous label ("Student 3") or, if you enrolled a roster, the matched name;
- per student and sampled moment (1 a second by default): the time, the face box, the detector
  score, the 7 emotion probabilities (none in attention-only mode), head pose, eye openness, gaze
  and the attention score;
- the roster: names and face *embeddings* (512 numbers per photo), never the photos;
- the text of reports you generate (Report page);
- blurred face thumbnails of a few strong moments, **only if you switch them on** (above).

**Never stored:** video frames, unblurred face images, audio, and the uploaded video (its
temporary copy is deleted after the analysis), and no live camera video. Nothing leaves this
computer (the live camera talks to another computer only if you add a STUN/TURN server above).
"""


@dataclass(frozen=True)
class Preferences:
    """The teacher's app settings (persisted as JSON next to the database).

    Attributes:
        attention_only: no emotion inference at all, and emotion views hidden.
        keep_thumbnails: keep blurred face thumbnails of strong moments (opt-in).
        retention_days: lectures older than this are deleted automatically (0 = keep).
        ice_servers: STUN/TURN URLs for the live camera from another computer (empty = local only).
    """

    attention_only: bool = False
    keep_thumbnails: bool = False
    retention_days: int = 0
    ice_servers: tuple[str, ...] = ()

    def rtc_configuration(self) -> dict[str, list[dict[str, list[str]]]]:
        """streamlit-webrtc's rtc_configuration: no servers by default (works on one machine)."""
        return {"iceServers": [{"urls": [u]} for u in self.ice_servers]}


def preferences_path(db: str | Path) -> Path:
    db = Path(db)
    return db.with_name(db.stem + ".settings.json")


def load_preferences(db: str | Path) -> Preferences:
    """Preferences saved for this database, defaults when none (unknown keys ignored)."""
    path = preferences_path(db)
    if not path.exists():
        return Preferences()
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return Preferences()
    known = {f.name for f in fields(Preferences)}
    values = {k: v for k, v in raw.items() if k in known}
    if "ice_servers" in values:
        values["ice_servers"] = tuple(str(u) for u in values["ice_servers"] if str(u).strip())
    if "retention_days" in values:
        values["retention_days"] = max(0, int(values["retention_days"]))
    return replace(Preferences(), **values)


def save_preferences(db: str | Path, prefs: Preferences) -> Path:
    path = preferences_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    d = asdict(prefs)
    d["ice_servers"] = list(prefs.ice_servers)
    path.write_text(json.dumps(d, indent=2))
    return path


def thumbnails_dir(db: str | Path, lecture_id: int | None = None) -> Path:
    base = Path(db).parent / "thumbnails"
    return base if lecture_id is None else base / str(lecture_id)


def delete_lecture(store: Store, lecture_id: int) -> None:
    """A lecture with everything derived from it (rows and thumbnails)."""
    store.delete_lecture(lecture_id)
    shutil.rmtree(thumbnails_dir(store.path, lecture_id), ignore_errors=True)


def purge_expired(store: Store, retention_days: int, now: datetime | None = None) -> list[int]:
    """Delete lectures created more than `retention_days` ago (0 = keep all); returns their ids.

    Lectures still being analysed are kept.
    """
    if retention_days <= 0:
        return []
    cutoff = (now or datetime.now()) - timedelta(days=retention_days)
    df = store.query_df("SELECT lecture_id FROM lectures WHERE created_at < ? AND status <> 'running'", [cutoff])
    ids = [int(i) for i in df["lecture_id"]]
    for lecture_id in ids:
        delete_lecture(store, lecture_id)
    return ids


def delete_everything(store: Store, *, roster: bool = True) -> int:
    """Every lecture (and the roster unless `roster=False`) and all thumbnails; returns lectures deleted."""
    ids = [int(i) for i in store.query_df("SELECT lecture_id FROM lectures")["lecture_id"]]
    for lecture_id in ids:
        store.delete_lecture(lecture_id)
    if roster:
        for name in store.roster_list()["name"]:
            store.roster_remove(str(name))
    shutil.rmtree(thumbnails_dir(store.path), ignore_errors=True)
    return len(ids)


def blur_face(rgb: np.ndarray, box: tuple[float, float, float, float], size: int = 112) -> np.ndarray:
    """A square crop around `box`, resized to `size` and Gaussian-blurred (expression stays
    readable, identity is hard to recover). Returns (size, size, 3) uint8 RGB."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = box
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 0.6
    a, b = max(0, round(cx - half)), min(w, round(cx + half))
    c, d = max(0, round(cy - half)), min(h, round(cy + half))
    crop = rgb[c:d, a:b] if b > a and d > c else rgb
    small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (0, 0), sigmaX=size / 28)


def blur_frame(rgb: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    """The whole frame with every face box strongly blurred (for the live snapshot)."""
    out = rgb.copy()
    h, w = out.shape[:2]
    for x1, y1, x2, y2 in boxes:
        a, b, c, d = max(0, int(x1)), min(w, int(x2)), max(0, int(y1)), min(h, int(y2))
        if b > a and d > c:
            k = max(3, (b - a) // 4 * 2 + 1)
            out[c:d, a:b] = cv2.GaussianBlur(out[c:d, a:b], (k, k), 0)
    return out


def save_thumbnails(store: Store, lecture_id: int, video: str | Path, moments: pd.DataFrame) -> list[Path]:
    """Blurred thumbnails of the given moments (columns student_id, frame_index, x1..y2) as JPEGs
    `<thumbnails>/<lecture>/<student>_<frame>.jpg`. Only call when the teacher opted in."""
    from core.video import sample_frames

    if moments.empty:
        return []
    wanted = {int(f): rows for f, rows in moments.groupby("frame_index")}
    out_dir = thumbnails_dir(store.path, lecture_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    fps = float(store.query_df("SELECT sample_fps FROM lectures WHERE lecture_id = ?", [lecture_id]).iloc[0, 0])
    written: list[Path] = []
    for frame in sample_frames(Path(video), fps):
        rows = wanted.pop(frame.index, None)
        if rows is None:
            continue
        for r in rows.itertuples():
            img = blur_face(frame.rgb, (r.x1, r.y1, r.x2, r.y2))
            path = out_dir / f"{int(r.student_id)}_{frame.index}.jpg"
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
            written.append(path)
        if not wanted:
            break
    return written


def strongest_moments_all(store: Store, lecture_id: int, per_student: int = 4) -> pd.DataFrame:
    """Per student the moments the drilldown shows as thumbnails (see dashboard.strongest_moments)."""
    from core.dashboard import strongest_moments
    from core.queries import observations

    obs = observations(store, lecture_id)
    parts = []
    for sid, group in obs.groupby("student_id"):
        top = strongest_moments(group, per_student)
        if not top.empty:
            parts.append(top.assign(student_id=int(sid)))  # type: ignore[call-overload]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def student_thumbnails(db: str | Path, lecture_id: int, student_id: int) -> dict[int, Path]:
    """frame_index -> thumbnail file of one student (empty when none were kept)."""
    folder = thumbnails_dir(db, lecture_id)
    out = {}
    for p in sorted(folder.glob(f"{student_id}_*.jpg")):
        out[int(p.stem.split("_", 1)[1])] = p
    return out
