"""Draw a digit and say it: what each encoder sees, and what the image, audio and fused heads predict."""
from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from core.errors import InvalidInput
from core.image import INK_THRESHOLD
from core.microphone import record, unavailable_reason
from ui import charts, examples, state

st.title("Draw a digit, say it")
st.caption("Two CNNs read your drawing and your voice; a third head fuses them. Draw with the mouse, then speak.")
predictor = state.predictor()
left, right = st.columns(2, gap="large")

with left:
    st.subheader("1 · Draw")
    brush = st.slider("Brush width", 8, 40, 22, key="brush")
    canvas = st_canvas(stroke_width=brush, stroke_color="#FFFFFF", background_color="#000000", height=280, width=280,
                       drawing_mode="freedraw", return_image_data=True, key="canvas")
    st.caption("Undo, redo and clear are in the canvas toolbar.")
    picture = st.file_uploader("…or upload a picture of a digit", type=["png", "jpg", "jpeg", "bmp", "webp"])

with right:
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
elif canvas.image_data is not None and (np.asarray(canvas.image_data)[..., :3].max() / 255.0) > INK_THRESHOLD:
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

st.divider()
if predictor is None:
    st.stop()
if image_in is None and audio_in is None:
    st.info("Draw a digit or record one to see the predictions. Either alone works; both are fused.")
    st.stop()
if image_in is not None and "image" not in predictor.modalities or audio_in is not None and "audio" not in predictor.modalities:
    st.warning(f"The active model reads {' and '.join(predictor.modalities)} only; the other input is ignored.")
    image_in = image_in if "image" in predictor.modalities else None
    audio_in = audio_in if "audio" in predictor.modalities else None
try:
    result = predictor.predict(image=image_in, audio=audio_in)
except InvalidInput as exc:
    st.error(f"Cannot read this input: {exc}")
    st.stop()

st.subheader("3 · What the model predicts")
heads = [h for h in ("fused", "image", "audio") if h in result.digits and (h != "fused" or len(result.probs) > 1)]
if image_in is None or audio_in is None:
    heads = [h for h in heads if h != "fused"]
cols = st.columns(3)
for col, head in zip(cols, heads):
    col.metric(f"{head.capitalize()} prediction", result.digits[head], f"{max(result.probs[head]):.0%} sure", delta_color="off")
if result.disagreement and "fused" in result.digits:
    side = "image" if result.digits["fused"] == result.digits["image"] else "audio" if result.digits["fused"] == result.digits["audio"] else None
    st.warning(f"Image and audio disagree: the drawing reads as {result.digits['image']}, the voice as "
               f"{result.digits['audio']}. The fused head went with the {side} ({result.digits['fused']})." if side else
               f"Image and audio disagree ({result.digits['image']} vs {result.digits['audio']}); the fused head chose "
               f"{result.digits['fused']}, neither of them.")
for col, head in zip(st.columns(3), heads):
    col.plotly_chart(charts.probabilities(result.probs[head], head), key=f"probs_{head}")

st.subheader("4 · What the model sees")
seen = st.columns(3)
if result.image is not None:
    seen[0].plotly_chart(charts.image28(result.image), key="seen_image")
if result.waveform is not None:
    seen[1].plotly_chart(charts.waveform(result.waveform), key="seen_wave")
    seen[2].plotly_chart(charts.mfcc(result.features), key="seen_mfcc")
