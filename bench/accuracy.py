"""Accuracy on real footage against hand labels (not a test): students, faces and ids per clip.

    python -m bench.accuracy [--clips NAME,...] [--set KEY=VALUE ...] [--no-mtcnn]

For every clip and photo in bench/labels/students.json (real media only; sources in
bench/labels/README.md), it analyses the file with ClassLens (default settings unless `--set`)
and compares, per labelled sampled frame:

- students: each labelled head is matched (one-to-one, nearest first) by a present student whose
  box holds the head centre or whose face centre lies within half a head size of it. Recall =
  matched labels / labels; precision = matched students / students, where a student on an
  `ignore` entry (a blurred or cut-off head) counts neither way. False students = unmatched ones.
- faces: recall of the faces MTCNN finds on the same sampled frames at full resolution (the
  reference the face-first pipeline was judged by), and of the labelled visible faces; and on
  each matched face, whether the dominant emotion ClassLens stored equals the one the same emotion
  model reads on MTCNN's box (how much our face boxes move the emotion reading).
- ids: labelled heads are chained across consecutive labelled frames (nearest within one head
  size, so a scene cut starts new chains); per chain, fragments = distinct student ids matched
  along it, id switches = changes of the matched id between consecutive matched frames (chains
  that were never matched are left out: they count in recall).

Clips marked `duplicate_of` are reported but left out of the pooled figures. Speed figures
come from `bench.speed`; each clip's analysis / decode-only time ratio is printed here too, so
accuracy and speed of the same run sit side by side. The last stdout line is one JSON object.
Works on databases of the face-first schema (before students were tracked) as well: there every
face row is a present student whose box is the face box.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "bench" / "labels" / "students.json"


def _parse_value(raw: str) -> object:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(raw.lower(), raw)


def _rows(store, lecture_id: int):  # type: ignore[no-untyped-def]
    """Present rows with a student box and (where visible) a face box, either schema."""
    cols = set(store.query_df("SELECT * FROM observations LIMIT 0").columns)
    if "sx1" in cols:
        sql = (
            "SELECT frame_index, student_id, sx1, sy1, sx2, sy2, x1, y1, x2, y2, dominant_emotion FROM observations "
            "WHERE lecture_id = ? AND coalesce(present, true)"
        )
    else:
        sql = (
            "SELECT frame_index, student_id, x1 AS sx1, y1 AS sy1, x2 AS sx2, y2 AS sy2, x1, y1, x2, y2, "
            "dominant_emotion FROM observations WHERE lecture_id = ?"
        )
    return store.query_df(sql, [lecture_id])


def _match(labels: list[dict], preds) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """Label index -> prediction row position, nearest first, one-to-one."""
    pairs = []
    for li, lab in enumerate(labels):
        x, y, size = float(lab["x"]), float(lab["y"]), float(lab.get("size", 30))
        for pi, p in enumerate(preds.itertuples()):
            inside = p.sx1 <= x <= p.sx2 and p.sy1 <= y <= p.sy2
            if p.x1 == p.x1:  # a face: its centre is the student's head
                hx, hy = (p.x1 + p.x2) / 2, (p.y1 + p.y2) / 2
            else:
                hx, hy = (p.sx1 + p.sx2) / 2, p.sy1 + 0.15 * (p.sy2 - p.sy1)
            d = float(np.hypot(hx - x, hy - y)) / max(size, 1.0)
            face_near = p.x1 == p.x1 and d <= 0.5
            if inside or face_near:
                pairs.append((d, li, pi))
    out: dict[int, int] = {}
    used: set[int] = set()
    for _, li, pi in sorted(pairs):
        if li in out or pi in used:
            continue
        out[li] = pi
        used.add(pi)
    return out


def _chains(frames: dict[str, list[dict]]) -> list[list[tuple[int, int]]]:
    """Labelled heads linked across consecutive labelled frames: lists of (frame, label index)."""
    chains: list[list[tuple[int, int]]] = []
    open_: dict[int, int] = {}  # label index in the previous frame -> chain
    prev: list[dict] | None = None
    for f in sorted(frames, key=int):
        labs = frames[f]
        nxt: dict[int, int] = {}
        taken: set[int] = set()
        for li, lab in enumerate(labs):
            best, best_d = None, 1.0
            for pj, plab in enumerate(prev or []):
                d = float(np.hypot(lab["x"] - plab["x"], lab["y"] - plab["y"])) / max(float(lab.get("size", 30)), 1.0)
                if d <= best_d and pj in open_ and pj not in taken:
                    best, best_d = pj, d
            if best is None:
                chains.append([])
                ci = len(chains) - 1
            else:
                ci = open_[best]
                taken.add(best)
            chains[ci].append((int(f), li))
            nxt[li] = ci
        open_, prev = nxt, labs
    return chains


def _mtcnn_faces(path: Path, fps: float, frames: set[int], emotion=None) -> dict[int, tuple[np.ndarray, list]]:  # type: ignore[no-untyped-def]
    """MTCNN at full resolution on the labelled sampled frames: frame -> ((N, 4) boxes, the
    dominant emotion the ClassLens emotion model reads on each MTCNN box, or None without one)."""
    from core.faces import EMOTIONS
    from core.video import sample_frames
    from core.vision.detect import MTCNNDetector

    mtcnn = MTCNNDetector(min_face=12, max_side=0)
    out: dict[int, tuple[np.ndarray, list]] = {}
    for frame in sample_frames(path, fps):
        if frame.index in frames:
            found = mtcnn.detect(frame.rgb, frame.index, frame.t)
            boxes = np.array([f.box for f in found], dtype=float).reshape(-1, 4)
            emotions: list = [None] * len(found)
            if emotion is not None and found:
                (read,) = emotion.analyse([(frame.rgb, found)])
                emotions = [EMOTIONS[int(np.argmax(f.emotion_probs))] for f in read]
            out[frame.index] = (boxes, emotions)
    return out


def iou_pairs(ref: np.ndarray, faces: np.ndarray, min_iou: float = 0.3) -> list[tuple[int, int]]:
    """(reference index, found index) pairs with IoU >= `min_iou`, best first, one-to-one."""
    from core.track import iou_matrix

    if not len(ref) or not len(faces):
        return []
    m = iou_matrix(ref, faces)
    used: set[int] = set()
    out = []
    for i in np.argsort(-m.max(axis=1)):
        j = int(np.argmax(np.where([k in used for k in range(m.shape[1])], -1.0, m[i])))
        if m[i, j] >= min_iou and j not in used:
            used.add(j)
            out.append((int(i), j))
    return out


def evaluate_clip(name: str, clip: dict, models, settings, mtcnn: bool) -> dict:  # type: ignore[no-untyped-def]
    """Analyse one labelled clip and score it (see the module docstring)."""
    from core.pipeline import analyze
    from core.store import Store
    from core.video import decode_only_seconds

    path = (ROOT / clip["path"]).resolve()
    if not path.exists():
        return {"clip": name, "skipped": f"{path} not found"}
    store = Store(Path(tempfile.mkdtemp(prefix="classlens-acc-")) / "acc.duckdb")
    t0 = time.perf_counter()
    result = analyze(path, store, settings, models=models)
    analysis_s = time.perf_counter() - t0
    decode_s = decode_only_seconds(path)[0] if path.suffix.lower() not in (".jpg", ".jpeg", ".png") else None
    rows = _rows(store, result.lecture_id)
    by_frame = dict(tuple(rows.groupby("frame_index")))
    frames: dict[str, list[dict]] = clip["frames"]
    ignore: dict[str, list[dict]] = clip.get("ignore", {})
    n_lab = n_hit = n_pred = n_false = 0
    face_lab = face_lab_hit = 0
    matched_id: dict[tuple[int, int], int] = {}
    for f, labs in frames.items():
        preds = by_frame.get(int(f))
        if preds is None:
            preds = rows.iloc[0:0]
        preds = preds.reset_index(drop=True)
        m = _match(labs, preds)
        n_lab += len(labs)
        n_hit += len(m)
        for li, pi in m.items():
            matched_id[(int(f), li)] = int(preds.iloc[pi]["student_id"])
            if labs[li].get("face_visible"):
                face_lab_hit += int(preds.iloc[pi]["x1"] == preds.iloc[pi]["x1"])
        face_lab += sum(1 for lab in labs if lab.get("face_visible"))
        rest = preds.drop(index=list(m.values()))
        on_ignored = set(_match(ignore.get(f, []), rest).values()) if len(rest) else set()
        n_pred += len(preds) - len(on_ignored)
        n_false += len(rest) - len(on_ignored)
    chains = [c for c in _chains(frames) if len(c) > 1 and any(k in matched_id for k in c)]
    fragments = switches = 0
    for chain in chains:
        ids = [matched_id[k] for k in chain if k in matched_id]
        fragments += len(set(ids))
        switches += sum(1 for a, b in itertools.pairwise(ids) if a != b)
    out: dict[str, object] = {
        "clip": name,
        "frames": len(frames),
        "labels": n_lab,
        "students_found": n_hit,
        "student_recall": n_hit / max(1, n_lab),
        "student_precision": (n_pred - n_false) / n_pred if n_pred else 1.0,
        "false_students": n_false,
        "students_in_lecture": result.students,
        "labelled_faces": face_lab,
        "labelled_face_recall": face_lab_hit / face_lab if face_lab else None,
        "chains": len(chains),
        "fragments_per_chain": fragments / len(chains) if chains else None,
        "id_switches": switches,
        "analysis_s": round(analysis_s, 2),
        "decode_s": None if decode_s is None else round(decode_s, 3),
        "ratio_to_decode": None if not decode_s else round(analysis_s / decode_s, 1),
        "duplicate_of": clip.get("duplicate_of"),
    }
    if mtcnn:
        emotion = next((st for st in models.analysers if type(st).__name__ == "EmotionAnalyser"), None)
        ref = _mtcnn_faces(path, settings.fps, {int(f) for f in frames}, emotion)
        n_ref = n_cov = n_emo = n_same = 0
        for f, (boxes, ref_emotions) in ref.items():
            preds = by_frame.get(f)
            faces = preds.dropna(subset=["x1", "y1", "x2", "y2"]) if preds is not None else None
            found = faces[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float) if faces is not None else np.zeros((0, 4))
            n_ref += len(boxes)
            for i, j in iou_pairs(boxes, found):
                n_cov += 1
                ours = faces.iloc[j]["dominant_emotion"] if faces is not None else None
                if ref_emotions[i] is not None and isinstance(ours, str):
                    n_emo += 1
                    n_same += int(ours == ref_emotions[i])
        out["mtcnn_faces"] = n_ref
        out["face_recall_vs_mtcnn"] = n_cov / n_ref if n_ref else None
        out["emotion_pairs"] = n_emo
        out["emotion_agreement_vs_mtcnn_boxes"] = n_same / n_emo if n_emo else None
    return out


def pooled(results: list[dict]) -> dict[str, object]:
    """Pooled figures over the clips that are not duplicates (counts summed, then divided)."""
    rs = [r for r in results if "skipped" not in r and not r.get("duplicate_of")]

    def total(key: str) -> float:
        return float(sum(r.get(key) or 0 for r in rs))

    n_pred = sum(r["students_found"] + r["false_students"] for r in rs)
    chains = total("chains")
    frag = sum((r["fragments_per_chain"] or 0) * r["chains"] for r in rs)
    out: dict[str, object] = {
        "clips": len(rs),
        "labels": int(total("labels")),
        "student_recall": total("students_found") / max(1.0, total("labels")),
        "student_precision": total("students_found") / n_pred if n_pred else 1.0,
        "false_students": int(total("false_students")),
        "fragments_per_chain": frag / chains if chains else None,
        "id_switches": int(total("id_switches")),
    }
    if any("mtcnn_faces" in r for r in rs):
        covered = sum((r.get("face_recall_vs_mtcnn") or 0) * r.get("mtcnn_faces", 0) for r in rs)
        out["mtcnn_faces"] = int(total("mtcnn_faces"))
        out["face_recall_vs_mtcnn"] = covered / total("mtcnn_faces") if total("mtcnn_faces") else None
        same = sum((r.get("emotion_agreement_vs_mtcnn_boxes") or 0) * r.get("emotion_pairs", 0) for r in rs)
        out["emotion_agreement_vs_mtcnn_boxes"] = same / total("emotion_pairs") if total("emotion_pairs") else None
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", help="comma-separated clip names (default: all labelled)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a Settings field")
    parser.add_argument("--no-mtcnn", action="store_true", help="skip the MTCNN face reference")
    args = parser.parse_args(argv)

    from core.pipeline import load_models
    from core.settings import Settings

    overrides = {k: _parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    settings = Settings.from_env(**overrides)
    labels = json.loads(LABELS.read_text())
    if abs(float(labels["sampled_fps"]) - settings.fps) > 1e-9:
        raise SystemExit(f"the labels are of frames sampled at {labels['sampled_fps']}/s; run with fps={settings.fps}")
    names = args.clips.split(",") if args.clips else list(labels["clips"])
    models = load_models(settings)
    results = []
    for name in names:
        r = evaluate_clip(name, labels["clips"][name], models, settings, not args.no_mtcnn)
        results.append(r)
        if "skipped" in r:
            print(f"  {name:<46s} skipped: {r['skipped']}")
            continue
        face = r.get("face_recall_vs_mtcnn")
        frag = r["fragments_per_chain"]
        print(
            f"  {name:<46s} students {r['students_found']}/{r['labels']} (recall {r['student_recall']:.3f}, "
            f"precision {r['student_precision']:.3f}, false {r['false_students']}), "
            f"faces vs MTCNN {'-' if face is None else f'{face:.3f}'} of {r.get('mtcnn_faces', '-')}, "
            f"emotion agreement {r.get('emotion_agreement_vs_mtcnn_boxes')}, "
            f"fragments/chain {'-' if frag is None else round(frag, 2)}, "
            f"id switches {r['id_switches']}, lecture students {r['students_in_lecture']}, "
            f"time {r['analysis_s']} s (x{r['ratio_to_decode']} decode)"
        )
    summary = pooled(results)
    print(f"  pooled (no duplicates): {summary}")
    from bench.speed import peak_rss_mb

    peak = peak_rss_mb()
    print(json.dumps({"settings": overrides, "pooled": summary, "clips": results, "peak_rss_mb": round(peak)}))


if __name__ == "__main__":
    sys.exit(main())
