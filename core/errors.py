"""Errors a teacher can meet, with messages written for them.

The CLI and the pages catch `ClassLensError` at the edge and show `str(err)`; logs keep the traceback.
"""

from __future__ import annotations

from models.errors import ClassLensError, WeightsMissing

__all__ = [
    "ClassLensError", "FileTooLarge", "LectureBusy", "LectureNotFound", "NoFaceInImage", "NoFacesFound",
    "UnreadableVideo", "WeightsMissing",
]  # fmt: skip


class UnreadableVideo(ClassLensError):
    """The file is missing, empty, not a video, or too corrupt to decode any frame."""


class UnreadableImage(UnreadableVideo):
    """A photo or still image that is missing, not an image, corrupt or too large to decode
    (a kind of UnreadableVideo, since a still image can be analysed as a lecture)."""


class NoFacesFound(ClassLensError):
    """The input decoded but no face was found in any sampled frame."""


class FileTooLarge(ClassLensError):
    """The upload exceeds the configured size limit."""


class LectureBusy(ClassLensError):
    """Another analysis of the same lecture is running right now."""


class LectureNotFound(ClassLensError):
    """No lecture with that id is in the database."""


class NoFaceInImage(ClassLensError):
    """A photo (e.g. for the roster or a verification) shows no detectable face."""
