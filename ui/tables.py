"""The leaderboard as a DataFrame, full or compact, and the missing-dataset notice."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data import status as datastatus
from core.runs.leaderboard import SPREADS, entries, seed_rows, seed_table
from core.runs.listing import list_runs
from ui import state

COMPACT = ["entry", "seed F1 (final)", "F1 fused", "status"]


SEED_COLUMNS = ("seed F1 (best epoch)", "seed F1 (final)")


def leaderboard() -> tuple[pd.DataFrame, list]:
    rows = entries(served=state.default_weights())
    return pd.DataFrame([e.row for e in rows]), rows


def styled(board: pd.DataFrame, decimals: dict[str, str] | None = None):
    """The board as displayed: "–" where nothing was measured, and "no seed figure" where the seed reported none
    (our own recipes, runs of them, LOSO rows); sorting still uses the numbers underneath."""
    style = board.style.format(na_rep="–", precision=2)
    seed = [c for c in SEED_COLUMNS if c in board]
    if seed:
        style = style.format(lambda v: "no seed figure" if pd.isna(v) else f"{v:.2f}", subset=seed)
    for column, fmt in (decimals or {}).items():
        if column in board:
            style = style.format(lambda v, f=fmt: "–" if pd.isna(v) else f.format(v), subset=[column])
    return style


def compact(df: pd.DataFrame) -> None:
    st.subheader("Trial leaderboard")
    cols = [c for c in COMPACT if c in df]
    ordered = df[cols].sort_values(
        ["F1 fused" if "F1 fused" in df else "seed F1 (final)"], ascending=False, na_position="last"
    )
    st.dataframe(
        ordered,
        hide_index=True,
        height=520,
        key="compact_board",
        column_config={
            "seed F1 (final)": st.column_config.NumberColumn("seed F1", format="%.1f"),
            "F1 fused": st.column_config.NumberColumn("F1 here", format="%.2f"),
        },
    )
    st.caption(
        "Seed F1 is what the seed report says; F1 columns are measured here on the test split. "
        "Details on the Leaderboard page."
    )


def data_notice() -> bool:
    """True when the datasets are present; otherwise a warning with the download offer."""
    root = state.data_root()
    missing = datastatus.missing(root)
    if not missing:
        return True
    st.warning(f"This page needs the MNIST and FSDD datasets. {missing}.")
    st.markdown(
        f"Download them (about 30 MB) into `{root}`, or point `DIGITS_DATA_DIR` at a folder that holds "
        "`mnist/` and `fsdd/recordings/`, then reload."
    )
    if st.button("Download the datasets", key="download_data"):
        proc = datastatus.start_download(root)
        st.session_state.download_pid = proc.pid
    if st.session_state.get("download_pid"):
        st.info(f"Downloading in the background (log: `{root / 'download.log'}`); reload this page in a minute.")
    return False


def _pm(mean, sd) -> str | None:
    if mean is None:
        return None
    return f"{mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")


def _versus(diff, beyond) -> str | None:
    if diff is None:
        return None
    mark = {True: "beyond spread", False: "within spread", None: "one seed: no spread"}[beyond]
    return f"{diff:+.2f} ({mark})"


def _seed_display(row: dict) -> dict:
    return {
        "trial": row["trial"],
        **({"grid": row["grid"]} if row["grid"] else {}),
        "seeds": row["seeds"],
        **{f"F1 {h}": _pm(row[f"F1 {h} mean"], row[f"F1 {h} sd"]) for h in ("fused", "image", "audio")},
        "seed F1 (final)": row["seed F1 (final)"],
        "fused − seed F1": _versus(row["vs seed F1"], row["vs seed beyond spread"]),
        "fused − best trial": (
            "best"
            if row["vs best"] == 0 and row["best trial"] == row["trial"]
            else _versus(row["vs best"], row["vs best beyond spread"])
        ),
    }


def seed_spread() -> None:
    """The sweeps' trials over seeds (core.runs.leaderboard.seed_table), refreshed while a sweep's trials run."""
    running = any(r.sweep and r.state == "running" for r in list_runs())

    def show() -> None:
        table = seed_table(seed_rows())
        if not table:
            st.info(
                "No sweep yet: `python -m core.sweep --trials try1 try2 ... --seeds 0 1 2` trains every trial with "
                "several seeds (on Ray when installed), and its trials appear here as they finish."
            )
            return
        sweeps = list(dict.fromkeys(r["sweep"] for r in table))
        sweep = st.selectbox("Sweep", sweeps, key="seed_sweep") if len(sweeps) > 1 else sweeps[0]
        st.dataframe(
            pd.DataFrame([_seed_display(r) for r in table if r["sweep"] == sweep]), hide_index=True, key="seed_table"
        )
        st.caption(
            f"Macro-F1 (%) on the test split after each seed's training: mean ± standard deviation over seeds, "
            f"for the fused head and the image and audio probes. A difference is *beyond spread* when it is "
            f"larger than {SPREADS:g} seed-to-seed standard deviations (pooled over the two trials compared); "
            "the seed report's F1 came from longer training on all the data, one run each."
            + (" A sweep is running: this table refreshes as its trials finish." if running else "")
        )

    st.fragment(show, run_every=15 if running else None)()
