"""The draw page's canvas, a small custom component that sends the drawing the moment the pen lifts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core.features.image import decode_data_url

# streamlit-drawable-canvas sends a drawing a fixed delay after the mouse-up (a constant of its front end), which
# was most of the draw page's latency budget (docs/results.md, Draw page latency). This pad sends on pointer-up,
# draws with pointer events (mouse, pen, touch) and keeps undo and redo.
_CSS = """
.pad { display: flex; flex-direction: column; gap: 0.4rem; }
canvas { display: block; width: 100%; aspect-ratio: 1; border-radius: 0.5rem; touch-action: none;
         cursor: crosshair; outline-offset: 2px; }
.tools { display: flex; gap: 0.4rem; }
button { font: inherit; font-size: 0.85rem; padding: 0.15rem 0.6rem; border-radius: 0.5rem; cursor: pointer;
         color: var(--st-text-color, inherit); background: var(--st-secondary-background-color, transparent);
         border: 1px solid var(--st-border-color, #8884); }
button:disabled { opacity: 0.45; cursor: default; }
"""
_PAD = st.components.v2.component(
    "digits.drawing_pad", css=_CSS, js=(Path(__file__).parent / "drawing_pad.js").read_text(encoding="utf-8")
)


def _heard() -> None:
    """A stroke reruns the fragment the pad is in; the drawing is read from the pad's state, not here."""


def drawing_pad(*, key: str, generation: int, brush: int, size: int = 260) -> np.ndarray | None:
    """The drawing as an RGBA array (white ink on black), or None while the pad is empty.

    generation: the app's Clear. A drawing made before the current generation is not the pad's any more (the pad
    empties when the generation changes and reports it, one round trip later), so it reads as None at once.
    Raises InvalidInput if what came back is not a PNG of a sensible size."""
    held = f"{key}_holds_drawing"  # what the last run read: a pad mounted again must empty the app's copy too
    result = _PAD(
        key=key,
        data={"size": size, "brush": brush, "generation": generation, "has_drawing": st.session_state.get(held, False)},
        default={"drawing": None},
        on_drawing_change=_heard,
        width=size,
    )
    drawing = result.get("drawing")
    drawing = drawing if isinstance(drawing, dict) else {}  # what a browser sent back: anything at all
    st.session_state[held] = drawing.get("generation") == generation and bool(drawing.get("png"))
    return decode_data_url(drawing["png"]) if st.session_state[held] else None
