"""Streamlit helpers shared by the pages: active model, sidebar, charts."""
