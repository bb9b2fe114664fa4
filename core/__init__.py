"""ClassLens core: pure-Python analysis pipeline, store, queries and reports (no Streamlit)."""
