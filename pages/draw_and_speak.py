"""Draw a digit and say it: what the image, audio and fused heads predict, and what each encoder sees."""
from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from core.errors import InvalidInput
from core.features.image import INK_THRESHOLD
from core.features.microphone import record, unavailable_reason
import ui
from ui import charts, examples, state

ui.page_setup()
st.title("Draw a digit, say it")
st.caption("Two CNNs read your drawing and your voice; a third head fuses them. Either input alone works too.")
draw_col, say_col, out_col = st.columns([1, 0.95, 1.5], gap="medium")

with draw_col:
    st.subheader("1 · Draw")
    canvas = st_canvas(stroke_width=st.session_state.get("brush", 22), stroke_color="#FFFFFF", background_color="#000000",
                       height=260, width=260, drawing_mode="freedraw", return_image_data=True, key="canvas")
    st.slider("Brush width", 8, 40, 22, key="brush", help="Hover the canvas for undo, redo and clear.")
    picture = st.file_uploader("…or upload a picture of a digit", type=["png", "jpg", "jpeg", "bmp", "webp"])

with say_col:
    st.subheader("2 · Say it")
    spoken = st.audio_input("Record with your browser's microphone", sample_rate=16000, key="mic")
    audio_file = st.file_uploader("…or upload a recording", type=["wav", "flac", "ogg", "mp3", "m4a", "webm"])
    with st.expander("Record from this computer's microphone"):
        reason = unavailable_reason(examples.is_local_client())
        if reason:
            st.info(reason)
        elif st.button("Record 1.5 s now"):
            st.session_state.local_recording = record(1.5)
    if examples.available():
        st.button("Try an example from the test set", on_click=examples.pick, help="A random MNIST digit and FSDD clip")

image_in, audio_in = None, None
example = st.session_state.get("example") or {}
if picture is not None:
    image_in = picture.getvalue()
elif canvas.image_data is not None and np.asarray(canvas.image_data)[..., :3].max() / 255.0 > INK_THRESHOLD:
    image_in = np.asarray(canvas.image_data)
elif example.get("image") is not None:
    image_in = example["image"]
if spoken is not None:
    audio_in = spoken.getvalue()
elif audio_file is not None:
    audio_in = audio_file.getvalue()
elif st.session_state.get("local_recording") is not None:
    audio_in = st.session_state.local_recording
elif example.get("audio") is not None:
    audio_in = example["audio"]

with out_col:
    st.subheader("3 · Prediction")
    predictor = state.predictor()  # after the widgets: the page draws while the model loads
    if predictor is None:
        st.stop()
    if image_in is None and audio_in is None:
        st.info("Draw a digit or record one to see the predictions. Either alone works; both are fused.")
        st.stop()
    unread = [m for m, x in (("image", image_in), ("audio", audio_in)) if x is not None and m not in predictor.modalities]
    if unread:
        st.warning(f"The active model reads {' and '.join(predictor.modalities)} only; your {unread[0]} is ignored.")
        image_in, audio_in = (None, audio_in) if unread[0] == "image" else (image_in, None)
    try:
        result = predictor.predict(image=image_in, audio=audio_in)
    except InvalidInput as exc:
        st.error(f"Cannot read this input: {exc}")
        st.stop()
    heads = [h for h in ("fused", "image", "audio") if h in result.digits]
    if image_in is None or audio_in is None:
        heads = [h for h in heads if h != "fused"]
    if result.disagreement and "fused" in heads:
        d = result.digits
        side = "image" if d["fused"] == d["image"] else "audio" if d["fused"] == d["audio"] else None
        st.warning(f"Image and audio disagree: the drawing reads as {d['image']}, the voice as {d['audio']}. "
                   + (f"The fused head went with the {side}: {d['fused']}." if side else
                      f"The fused head chose {d['fused']}, neither of them."))
    elif "fused" in heads:
        st.success(f"Image and audio agree on {result.digits['fused']}.")
    if "audio" in heads and result.audio_unsure:
        (first, p1), (second, p2) = result.top("audio")
        st.info(f"The voice is unclear to the model: {first} ({p1:.0%}) or {second} ({p2:.0%}). Below "
                f"{result.unsure_below:.0%} its answers are right less than 9 times in 10 on voices it never heard.")
    for head in heads:
        card, bars = st.columns([1, 1.7], vertical_alignment="center")
        (first, p1), (second, p2) = result.top(head)
        unsure = head == "audio" and result.audio_unsure
        card.metric(f"{head.capitalize()} prediction", f"{first} or {second}" if unsure else first,
                    f"{p1:.0%} / {p2:.0%}, unsure" if unsure else f"{p1:.0%} sure",
                    delta_color="off", delta_arrow="off", border=True)
        bars.plotly_chart(charts.probabilities(result.probs[head], head), key=f"probs_{head}")

st.divider()
st.subheader("What the model sees")
seen = st.columns(3)
if result.image is not None:
    seen[0].plotly_chart(charts.image28(result.image), key="seen_image")
if result.waveform is not None:
    seen[1].plotly_chart(charts.waveform(result.waveform), key="seen_wave")
    seen[2].plotly_chart(charts.mfcc(result.features), key="seen_mfcc")
