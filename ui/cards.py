"""The draw page's prediction cards: one per head with its probability bars, and the notes on disagreement and an
unclear voice. One function takes the prediction, so additions to the cards stay in one place."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import profile
from ui.charts import HEAD_COLOURS

BAR_AREA_PX = 96  # height of the tallest (100 %) bar
# An unsure reading is where adapting helps most: a voice the model never heard (docs/results.md, Your voice).
TEACH_HINT = " If it often mishears you, **Teach it your voice** below adapts it to you in a few seconds."


def heads_shown(result, image_given: bool, audio_given: bool) -> list[str]:
    """The heads that have a card: each head the model has, the fused one only when both inputs were given."""
    heads = [h for h in ("fused", "image", "audio") if h in result.digits]
    return heads if image_given and audio_given else [h for h in heads if h != "fused"]


def render(result, image_given: bool, audio_given: bool) -> None:
    """The notes, then one card and its probability bars per head, in the current container."""
    heads = heads_shown(result, image_given, audio_given)
    if result.disagreement and "fused" in heads:
        d = result.digits
        side = "image" if d["fused"] == d["image"] else "audio" if d["fused"] == d["audio"] else None
        st.warning(
            f"Image and audio disagree: the drawing reads as {d['image']}, the voice as {d['audio']}. "
            + (
                f"The fused head went with the {side}: {d['fused']}."
                if side
                else f"The fused head chose {d['fused']}, neither of them."
            )
        )
    elif "fused" in heads:
        st.success(f"Image and audio agree on {result.digits['fused']}.")
    if "audio" in heads and result.audio_unsure:
        (first, p1), (second, p2) = result.top("audio")
        st.info(
            f"The voice is unclear to the model: {first} ({p1:.0%}) or {second} ({p2:.0%}). Below "
            f"{result.unsure_below:.0%} its answers are right less than 9 times in 10 on voices it never heard."
            + ("" if "audio" in result.unadapted else TEACH_HINT)
        )
    for head in heads:
        card, bars = st.columns([1, 1.7], vertical_alignment="center")
        (first, p1), (second, p2) = result.top(head)
        unsure = head == "audio" and result.audio_unsure
        card.metric(
            f"{head.capitalize()} prediction",
            f"{first} or {second}" if unsure else first,
            f"{p1:.0%} / {p2:.0%}, unsure" if unsure else f"{p1:.0%} sure",
            delta_color="off",
            delta_arrow="off",
            border=True,
        )
        if head in result.unadapted:  # a voice profile is active: what the shipped model would have said
            digit, p = result.unadapted_top(head)
            card.caption(f"Adapted to your voice. Unadapted: **{digit}** ({p:.0%} sure).")
        profile.mark(f"{head} card")
        bars.html(probability_bars(result.probs[head], head))


def probability_bars(probs, head: str) -> str:
    """Ten bars as plain HTML: drawn with the card, where a plotly chart took the browser tens of ms per head."""
    probs = np.asarray(probs, dtype=float)
    top = int(np.argmax(probs))
    columns = "".join(
        f'<div title="digit {d}: {p:.1%}" data-digit="{d}" data-probability="{p:.6f}" '
        'style="flex:1;display:flex;flex-direction:column;align-items:center;justify-content:flex-end">'
        f'<div style="width:70%;height:{max(1.0, p * BAR_AREA_PX):.1f}px;border-radius:2px 2px 0 0;'
        f'background:{HEAD_COLOURS[head] if d == top else "#cbd5e1"}"></div>'
        f'<div style="font-size:0.75rem;line-height:1.2rem">{d}</div></div>'
        for d, p in enumerate(probs)
    )
    return (
        f'<div class="probability-bars" aria-label="{head} probabilities" '
        f'style="display:flex;gap:2px;height:{BAR_AREA_PX + 20}px">{columns}</div>'
    )
