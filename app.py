"""The digits app: routes to the pages (each draws the shared sidebar from ui.sidebar via ui.page_setup)."""
import os

import streamlit as st

from core.runs import APP_WAIT_POLICY_ENV

# OpenMP reads this once, when torch or scikit-learn first loads it (after these lines): the app's waiting
# threads sleep instead of spinning, so a t-SNE of 10,000 points beside a training started from the sidebar
# took 23 s instead of 34 (alone 13.3 s instead of 12.9). The trainings themselves keep the default (core.runs).
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.update({"OMP_WAIT_POLICY": "PASSIVE", APP_WAIT_POLICY_ENV: "1"})

from ui import state  # noqa: E402

st.set_page_config(page_title="digits: draw it, say it", page_icon="🔢", layout="wide")
page = st.navigation([
    st.Page("pages/draw_and_speak.py", title="Draw & speak", icon=":material/draw:", default=True),
    st.Page("pages/embeddings.py", title="Explore embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
])
try:
    page.run()
finally:  # also after st.stop() or a rerun: the page has been sent, so the model load may take the CPU now
    state.release_preload()
