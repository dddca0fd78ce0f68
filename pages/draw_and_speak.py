"""Draw a digit and say it: what the image, audio and fused heads predict, and what each encoder sees."""

from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

import ui
from core.errors import InvalidInput
from core.features.image import INK_THRESHOLD
from core.features.microphone import record, unavailable_reason
from ui import cards, charts, examples, profile, state, teach_voice

UPLOADS = ("picture", "mic", "audio_file")


def generation(name: str) -> int:
    return st.session_state.get(f"{name}_generation", 0)


def widget_key(name: str) -> str:
    """The widget's key; a new key gives a new, empty widget."""
    return f"{name}_{generation(name)}" if generation(name) else name


def reset(*names: str) -> None:
    for name in names:
        st.session_state[f"{name}_generation"] = generation(name) + 1


def reset_canvas() -> None:
    """Empty the canvas. Not by a new key: the canvas (0.13) then mounts beside its old background, off the
    pointer. A new initial drawing empties it in place, and it reports the empty drawing back."""
    reset("canvas")
    st.session_state.canvas_reset_pending = True


def clear_drawing() -> None:
    reset_canvas()
    (st.session_state.get("example") or {}).pop("image", None)  # else the example's digit would come back


def try_example() -> None:
    """An example replaces whatever was drawn, uploaded or recorded: otherwise those would win over it."""
    reset_canvas()
    reset(*UPLOADS)
    st.session_state.pop("local_recording", None)
    examples.pick()


def has_ink(canvas) -> bool:
    if st.session_state.get("canvas_reset_pending"):
        if (canvas.json_data or {}).get("objects"):
            return False  # the drawing from before the reset, until the canvas reports itself empty
        st.session_state.canvas_reset_pending = False
    pixels = canvas.image_data
    return pixels is not None and np.asarray(pixels)[..., :3].max() / 255.0 > INK_THRESHOLD


@st.fragment
def draw_say_predict() -> None:
    """Inputs and predictions: a stroke or a recording reruns this, not the sidebar and the rest of the page."""
    profile.mark("run start")
    draw_col, say_col, out_col = st.columns([1, 0.95, 1.5], gap="medium")
    with draw_col:
        st.subheader("1 · Draw")
        canvas = st_canvas(
            stroke_width=st.session_state.get("brush", 22),
            stroke_color="#FFFFFF",
            background_color="#000000",
            height=260,
            width=260,
            drawing_mode="freedraw",
            return_image_data=True,
            key="canvas",
            initial_drawing={"objects": [], "generation": generation("canvas")},
        )
        st.button("Clear drawing", icon=":material/ink_eraser:", on_click=clear_drawing)
        st.slider("Brush width", 8, 40, 22, key="brush", help="Hover the canvas for undo and redo.")
        picture = st.file_uploader(
            "…or upload a picture of a digit", type=["png", "jpg", "jpeg", "bmp", "webp"], key=widget_key("picture")
        )
    with say_col:
        st.subheader("2 · Say it")
        spoken = st.audio_input("Record with your browser's microphone", sample_rate=16000, key=widget_key("mic"))
        audio_file = st.file_uploader(
            "…or upload a recording", type=["wav", "flac", "ogg", "mp3", "m4a", "webm"], key=widget_key("audio_file")
        )
        with st.expander("Record from this computer's microphone"):
            reason = unavailable_reason(examples.is_local_client())
            if reason:
                st.info(reason)
            elif st.button("Record 1.5 s now"):
                st.session_state.local_recording = record(1.5)
        if examples.available():
            st.button(
                "Try an example from the test set",
                on_click=try_example,
                help="A random MNIST digit and FSDD clip, in place of your drawing and recording",
            )

    example = st.session_state.get("example") or {}
    image_in = (
        picture.getvalue()
        if picture is not None
        else np.asarray(canvas.image_data)
        if has_ink(canvas)
        else example.get("image")
    )
    local = st.session_state.get("local_recording")
    audio_in = (
        spoken.getvalue()
        if spoken is not None
        else audio_file.getvalue()
        if audio_file is not None
        else local
        if local is not None
        else example.get("audio")
    )
    with out_col:
        st.subheader("3 · Prediction")
        result = predict(image_in, audio_in)
    if result is not None:
        model_sees(result)
    profile.mark("run end")


def predict(image_in, audio_in):
    """The prediction for the given inputs, or None with the reason on the page."""
    predictor = state.predictor()  # after the widgets: the page draws while the model loads
    if predictor is None:
        return None
    if image_in is None and audio_in is None:
        st.info("Draw a digit or record one to see the predictions. Either alone works; both are fused.")
        return None
    given = (("image", image_in), ("audio", audio_in))
    unread = [m for m, x in given if x is not None and m not in predictor.modalities]
    if unread:
        st.warning(f"The active model reads {' and '.join(predictor.modalities)} only; your {unread[0]} is ignored.")
        image_in, audio_in = (None, audio_in) if unread[0] == "image" else (image_in, None)
    profile.mark("predict start")
    try:
        result = predictor.predict(image=image_in, audio=audio_in, profile=teach_voice.active_profile(predictor))
    except InvalidInput as exc:
        st.error(f"Cannot read this input: {exc}")
        return None
    profile.mark("predict end")
    cards.render(result, image_in is not None, audio_in is not None)
    return result


def model_sees(result) -> None:
    """The 28×28 image, the waveform and the MFCCs the encoders read, built only while the expander is open."""
    with st.expander("What the model sees", key="model_sees", on_change="rerun") as seen:
        if not seen.open:
            return
        columns = st.columns(3)
        if result.image is not None:
            columns[0].plotly_chart(charts.image28(result.image), key="seen_image")
        if result.waveform is not None:
            columns[1].plotly_chart(charts.waveform(result.waveform), key="seen_wave")
            columns[2].plotly_chart(charts.mfcc(result.features), key="seen_mfcc")


ui.page_setup()
st.title("Draw a digit, say it")
st.caption("Two CNNs read your drawing and your voice; a third head fuses them. Either input alone works too.")
draw_say_predict()
teach_voice.section()
