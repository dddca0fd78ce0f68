"""The digits app: routes to the pages (each draws the shared sidebar from ui.sidebar via ui.page_setup)."""
import streamlit as st

st.set_page_config(page_title="digits: draw it, say it", page_icon="🔢", layout="wide")
st.navigation([
    st.Page("pages/draw_and_speak.py", title="Draw & speak", icon=":material/draw:", default=True),
    st.Page("pages/embeddings.py", title="Explore embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
]).run()
