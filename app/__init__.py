"""Where Streamlit meets models and DuckDB: cached resources and shared widgets for the pages."""
