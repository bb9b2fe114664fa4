"""The root of ClassLens's error hierarchy, defined here so that models/ never imports core/.

`core.errors` re-exports both classes and adds the errors of the application.
"""

from __future__ import annotations


class ClassLensError(Exception):
    """Base class of every error that is the user's input or installation, not a bug."""


class WeightsMissing(ClassLensError):
    """A model file is missing or its checksum does not match; `make setup` restores it."""
