"""Process-wide cached resources and per-lecture cached data: the only place Streamlit meets
models and DuckDB. Models load once per process; the store once per DB path; the job registry
once per process; dashboard data once per lecture version (refreshed when the lecture changes).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from app.jobs import JobRegistry
from core import dashboard, exports, queries
from core.pipeline import Models, load_models
from core.privacy import Preferences, load_preferences, purge_expired
from core.report.facts import build_facts, input_string
from core.settings import Settings, db_path
from core.store import Store


@st.cache_resource(show_spinner="Loading the face and emotion models…")
def models_for(attention_only: bool, emotion_model: str | None) -> Models:
    """Models are read-only at inference time and shared by all sessions."""
    return load_models(Settings(attention_only=attention_only, emotion_model=emotion_model))


@st.cache_resource
def store_at(path: str) -> Store:
    return Store(path)


@st.cache_resource
def job_registry() -> JobRegistry:
    """One registry per process: every tab's background analyses."""
    return JobRegistry()


def current_store() -> Store:
    return store_at(str(db_path()))


def current_preferences() -> Preferences:
    return load_preferences(db_path())


def current_settings() -> Settings:
    """Environment settings with the Settings page's choices applied (attention-only)."""
    settings = Settings.from_env()
    if current_preferences().attention_only:
        settings = replace(settings, attention_only=True)
    return settings


def current_models(settings: Settings) -> Models:
    return models_for(settings.attention_only, settings.emotion_model)


@st.cache_data(ttl=3600, show_spinner=False)
def auto_purge(db: str, retention_days: int) -> list[int]:
    """Delete lectures past the retention period (at most once an hour per process)."""
    return purge_expired(store_at(db), retention_days)


def lecture_version(lecture_id: int) -> str:
    """Changes whenever the lecture's rows change (status, progress, observations, labels)."""
    return queries.lecture_version(current_store(), lecture_id)


def attention_only() -> bool:
    """The teacher's attention-only choice (Settings & privacy): no emotion anywhere."""
    return current_preferences().attention_only


@st.cache_data(max_entries=32, show_spinner="Reading the lecture…")
def lecture_frames(db: str, lecture_id: int, version: str, attention_only: bool = False) -> dashboard.LectureFrames:
    return dashboard.build(store_at(db), lecture_id, attention_only=attention_only)


@st.cache_data(max_entries=64, show_spinner=False)
def student_frames(
    db: str, lecture_id: int, student_id: int, version: str, attention_only: bool = False
) -> dashboard.StudentFrames:
    return dashboard.student_frames(store_at(db), lecture_id, student_id, attention_only=attention_only)


@st.cache_data(max_entries=32, show_spinner=False)
def lecture_exports(db: str, lecture_id: int, version: str, attention_only: bool = False) -> dict[str, str]:
    """The four exports of a lecture: observations CSV, students CSV, JSON, report input string."""
    store = store_at(db)
    return {
        "observations_csv": exports.observations_csv(store, lecture_id, attention_only=attention_only),
        "students_csv": exports.students_csv(store, lecture_id, attention_only=attention_only),
        "json": exports.emotions_json(store, lecture_id, attention_only=attention_only),
        "report_input": input_string(build_facts(store, lecture_id, attention_only=attention_only)),
    }


def db_str() -> str:
    return str(Path(db_path()))
