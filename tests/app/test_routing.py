"""The pages/ folder under st.navigation: the private switch ui.page_setup turns, pinned to the checked version."""

from __future__ import annotations

import streamlit
from streamlit.runtime.pages_manager import PagesManager

from tests.helpers import REPO, app_after_run

CHECKED_WITH = "1.67.0"  # the Streamlit version whose pages/ handling ui.page_setup was written against


def test_streamlit_is_the_version_the_pages_workaround_was_checked_against():
    # On an upgrade: check whether a pages/ folder still turns on legacy multipage handling, keep or drop the
    # workaround in ui.page_setup, then move CHECKED_WITH (and the pin in requirements.txt) together.
    assert streamlit.__version__ == CHECKED_WITH
    assert isinstance(PagesManager.uses_pages_directory, bool | None)


def test_the_folder_would_turn_on_legacy_pages_and_the_app_turns_it_off():
    assert (REPO / "pages").is_dir()
    at = app_after_run("pages/leaderboard.py")
    assert PagesManager.uses_pages_directory is False
    assert any("Leaderboard" in t.value for t in at.title)
    assert at.sidebar.button or at.sidebar.selectbox  # the shared sidebar, drawn inside the page's run
