"""Process-wide cached resources: models load once per process, the store once per DB path."""

from __future__ import annotations

import streamlit as st

from core.pipeline import Models, load_models
from core.settings import Settings, db_path
from core.store import Store


@st.cache_resource(show_spinner="Loading the face and emotion models…")
def models_for(attention_only: bool, emotion_model: str | None) -> Models:
    """Models are read-only at inference time and shared by all sessions."""
    return load_models(Settings(attention_only=attention_only, emotion_model=emotion_model))


@st.cache_resource
def store_at(path: str) -> Store:
    return Store(path)


def current_store() -> Store:
    return store_at(str(db_path()))


def current_settings() -> Settings:
    return Settings.from_env()
