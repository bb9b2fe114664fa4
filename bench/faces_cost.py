"""Cost and accuracy of the per-face analysers: FaceNet identity, face mesh + head pose + eyes.

    python -m bench.faces_cost [--threads 2] [--repeats 20]

Prints per-face milliseconds (embedding at batch 1 and 8; mesh, iris, solvePnP; 5-point pose),
identity accuracy on every pair of the real fixture faces at SAME_PERSON_THRESHOLD, and the
head-pose values on the real head-pose fixtures and their mirror images. Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from core.vision.detect import MTCNNDetector
from core.vision.headpose import estimate_pose, estimate_pose_five_points, pose_from_mesh
from core.vision.identity import (
    SAME_PERSON_THRESHOLD,
    default_embedder,
    detect_face_boxes,
    embed_largest_face,
    load_rgb,
)
from models.landmarks import LandmarkModel

ROOT = Path(__file__).resolve().parent.parent
IDENTITY = ROOT / "tests" / "fixtures" / "identity"
HEADPOSE = ROOT / "tests" / "fixtures" / "headpose"


def ms_per_call(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def identity_accuracy() -> None:
    faces = sorted(IDENTITY.glob("*.jpg"))
    emb = {}
    for path in faces:
        if path.stem.startswith("aligned_"):
            emb[path] = default_embedder().embed_crops(load_rgb(path)[None])[0]
        else:
            emb[path] = embed_largest_face(path)
    person = {p: p.stem.removeprefix("aligned_").rsplit("_", 1)[0] for p in faces}
    same, diff = [], []
    for a, b in itertools.combinations(faces, 2):
        (same if person[a] == person[b] else diff).append(float(np.linalg.norm(emb[a] - emb[b])))
    s, d = np.array(same), np.array(diff)
    t = SAME_PERSON_THRESHOLD
    print(
        f"\nidentity: {len(faces)} faces, {len(set(person.values()))} people, {len(s)} same / {len(d)} different pairs"
    )
    print(f"  same-person L2   mean {s.mean():.3f} ± {s.std():.3f}, range {s.min():.3f}–{s.max():.3f}")
    print(f"  different L2     mean {d.mean():.3f} ± {d.std():.3f}, range {d.min():.3f}–{d.max():.3f}")
    print(
        f"  at threshold {t}: same accepted {int((s < t).sum())}/{len(s)}, "
        f"different rejected {int((d >= t).sum())}/{len(d)}, "
        f"accuracy {((s < t).sum() + (d >= t).sum()) / (len(s) + len(d)):.4f}"
    )
    for margin in (0.9, 1.1):
        print(
            f"  at {margin}: same accepted {int((s < margin).sum())}/{len(s)}, "
            f"different rejected {int((d >= margin).sum())}/{len(d)}"
        )


def costs(repeats: int) -> None:
    rgb = load_rgb(IDENTITY / "obama_1.jpg")
    box = detect_face_boxes(rgb)[:1]
    embedder = default_embedder()
    one = ms_per_call(lambda: embedder.embed(rgb, box), repeats)
    eight = ms_per_call(lambda: embedder.embed(rgb, np.repeat(box, 8, axis=0)), max(2, repeats // 4)) / 8
    print(
        f"\nembedding (crop + InceptionResnetV1, {torch.get_num_threads()} torch threads): "
        f"{one:.1f} ms/face at batch 1, {eight:.1f} ms/face at batch 8"
    )

    frame = load_rgb(HEADPOSE / "frontal_male.jpg")
    found = MTCNNDetector(min_face=20).detect(frame)
    b, marks = np.array(found[0].box), np.asarray(found[0].landmarks)
    h, w = frame.shape[:2]
    mesh_only, with_iris = LandmarkModel(iris=False), LandmarkModel(iris=True)
    t_mesh = ms_per_call(lambda: mesh_only.mesh(frame, b, marks[:2]), repeats)
    t_iris = ms_per_call(lambda: with_iris.mesh(frame, b, marks[:2]), repeats)
    mesh = with_iris.mesh(frame, b, marks[:2])
    assert mesh is not None
    t_pnp = ms_per_call(lambda: pose_from_mesh(mesh, h, w), repeats)
    t_all = ms_per_call(lambda: estimate_pose(frame, b[None], marks[None], with_iris), repeats)
    t_five = ms_per_call(lambda: estimate_pose_five_points(frame.shape, marks[None]), repeats)
    print(f"face mesh {t_mesh:.1f} ms; mesh + 2 iris {t_iris:.1f} ms; solvePnP(468) + EAR + gaze {t_pnp:.1f} ms;")
    print(f"estimate_pose (mesh + iris + pose + eyes) {t_all:.1f} ms/face; 5-point fallback {t_five:.2f} ms/face")


def head_pose_values() -> None:
    detector = MTCNNDetector(min_face=20)
    print("\nhead pose on real fixtures (degrees; mirrored image in brackets):")
    for path in sorted(HEADPOSE.glob("*.jpg")):
        rgb = load_rgb(path)
        rows = []
        for image in (rgb, np.ascontiguousarray(rgb[:, ::-1])):
            found = sorted(detector.detect(image), key=lambda f: f.box[0])
            boxes = np.array([f.box for f in found]).reshape(-1, 4)
            marks = np.array([f.landmarks for f in found]).reshape(-1, 5, 2)
            rows.append(estimate_pose(image, boxes, marks))
        rows[1] = rows[1][::-1]  # mirrored faces come in the opposite order
        for p, m in zip(*rows, strict=True):
            print(
                f"  {path.name:18s} yaw {p.yaw:+6.1f} ({m.yaw:+6.1f})  pitch {p.pitch:+6.1f} ({m.pitch:+6.1f})  "
                f"roll {p.roll:+6.1f} ({m.roll:+6.1f})  eyes_open {p.eyes_open:.2f} ear {p.ear:.3f}  "
                f"gaze {p.gaze_x:+.2f},{p.gaze_y:+.2f}  rms {p.reprojection_px:.1f} px"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    costs(args.repeats)
    identity_accuracy()
    head_pose_values()


if __name__ == "__main__":
    main()
