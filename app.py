"""The digits app: routes to the pages (each draws the shared sidebar from ui.sidebar via ui.page_setup)."""

import streamlit as st

from ui import state

st.set_page_config(page_title="digits: draw it, say it", page_icon="🔢", layout="wide")
page = st.navigation(
    [
        st.Page("pages/draw_and_speak.py", title="Draw & speak", icon=":material/draw:", default=True),
        st.Page("pages/embeddings.py", title="Explore embeddings", icon=":material/scatter_plot:"),
        st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
    ]
)
try:
    page.run()
finally:  # also after st.stop() or a rerun: the page has been sent, so the model load may take the CPU now
    state.release_preload()
