"""Shared fixtures: real media paths, models loaded once, a database analysed once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = FIXTURES.parent.parent

# Tests must never reach a model hub: fail loudly instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def fixture(name: str) -> Path:
    path = FIXTURES / name
    assert path.exists(), f"missing fixture {path}"
    return path


@pytest.fixture(scope="session")
def models():
    from core.pipeline import load_models
    from core.settings import Settings

    return load_models(Settings())


@pytest.fixture(scope="session")
def analysed_db(tmp_path_factory, models):
    """A database holding one clean analysis of WolfgangLanger_Pexels.mp4 (1 face, 19.7 s)."""
    from core.pipeline import analyze
    from core.settings import Settings
    from core.store import Store

    store = Store(tmp_path_factory.mktemp("db") / "classlens.duckdb")
    result = analyze(fixture("WolfgangLanger_Pexels.mp4"), store, Settings(), models=models)
    return store, result


@pytest.fixture
def app_db(tmp_path, monkeypatch, analysed_db, models):
    """For AppTest pages: CLASSLENS_DB -> a private copy of `analysed_db`; the app's model loader
    returns the session's models (loaded once)."""
    import shutil

    import app.resources

    store, _ = analysed_db
    path = tmp_path / "app.duckdb"
    shutil.copy(store.path, path)
    monkeypatch.setenv("CLASSLENS_DB", str(path))
    monkeypatch.setattr(app.resources, "load_models", lambda settings: models)
    return path
