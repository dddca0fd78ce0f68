"""The leaderboard as a DataFrame, full or compact, and the missing-dataset notice."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data import status as datastatus
from core.runs.leaderboard import entries
from ui import state

COMPACT = ["entry", "seed F1 (final)", "F1 fused", "status"]


def leaderboard() -> tuple[pd.DataFrame, list]:
    rows = entries()
    return pd.DataFrame([e.row for e in rows]), rows


def compact(df: pd.DataFrame) -> None:
    st.subheader("Trial leaderboard")
    cols = [c for c in COMPACT if c in df]
    ordered = df[cols].sort_values(["F1 fused" if "F1 fused" in df else "seed F1 (final)"], ascending=False, na_position="last")
    st.dataframe(ordered, hide_index=True, height=520, key="compact_board",
                 column_config={"seed F1 (final)": st.column_config.NumberColumn("seed F1", format="%.1f"),
                                "F1 fused": st.column_config.NumberColumn("F1 here", format="%.2f")})
    st.caption("Seed F1 is what the seed report says; F1 columns are measured here on the test split. "
               "Details on the Leaderboard page.")


def data_notice() -> bool:
    """True when the datasets are present; otherwise a warning with the download offer."""
    root = state.data_root()
    missing = datastatus.missing(root)
    if not missing:
        return True
    st.warning(f"This page needs the MNIST and FSDD datasets. {missing}.")
    st.markdown(f"Download them (about 30 MB) into `{root}`, or point `DIGITS_DATA_DIR` at a folder that holds "
                "`mnist/` and `fsdd/recordings/`, then reload.")
    if st.button("Download the datasets", key="download_data"):
        proc = datastatus.start_download(root)
        st.session_state.download_pid = proc.pid
    if st.session_state.get("download_pid"):
        st.info(f"Downloading in the background (log: `{root / 'download.log'}`); reload this page in a minute.")
    return False
