"""Streamlit helpers shared by the pages: page setup (routing guard + shared sidebar), model, charts."""

import streamlit as st


def page_setup() -> None:
    """First line of every page: make sure app.py routes it, then draw the shared sidebar.

    Streamlit treats an app with a pages/ folder as a legacy (v1) multipage app until st.navigation has run once: the
    first visit to /embeddings on a fresh server would run the page bare, and in AppTest every run is v1, where
    widgets created in app.py itself cannot be clicked. So the sidebar is drawn from here, inside the page's run.

    No supported switch exists: Streamlit keeps `PagesManager.uses_pages_directory` as "a relic of v1" set from the
    folder's existence (streamlit/streamlit#10276), and its documented way out is another folder name, which the
    project's layout rules out. tests/app/test_routing.py pins this private API to the Streamlit version it was
    checked against, so an upgrade fails there first."""
    from streamlit.runtime.pages_manager import PagesManager

    from ui import sidebar, state

    state.preload_default()
    if PagesManager.uses_pages_directory and not st.session_state.get("_rerouted"):
        PagesManager.uses_pages_directory = False
        st.session_state._rerouted = True
        st.rerun()
    sidebar.render()
