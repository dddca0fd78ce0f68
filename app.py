"""The digits app: routes to the pages and draws the shared sidebar."""
import streamlit as st

from ui import sidebar

st.set_page_config(page_title="digits: draw it, say it", page_icon="🔢", layout="wide")
page = st.navigation([
    st.Page("pages/draw_and_speak.py", title="Draw & speak", icon="✏️", default=True),
    st.Page("pages/embeddings.py", title="Explore embeddings", icon="🗺️"),
    st.Page("pages/leaderboard.py", title="Leaderboard", icon="🏆"),
])
sidebar.render()
page.run()
