"""Draw a digit and say it: what the image, audio and fused heads predict, and what each encoder sees."""

from __future__ import annotations

import streamlit as st

import ui
from core.errors import InvalidInput
from core.features.microphone import record, unavailable_reason
from ui import cards, charts, examples, profile, state, teach_voice
from ui.drawing_pad import drawing_pad

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
    """Empty the canvas: a new generation, which the pad empties itself for, in place."""
    reset("canvas")


def clear_drawing() -> None:
    reset_canvas()
    (st.session_state.get("example") or {}).pop("image", None)  # else the example's digit would come back


def try_example() -> None:
    """An example replaces whatever was drawn, uploaded or recorded: otherwise those would win over it."""
    reset_canvas()
    reset(*UPLOADS)
    st.session_state.pop("local_recording", None)
    examples.pick()


@st.fragment
def draw_say_predict() -> None:
    """Inputs and predictions: a stroke or a recording reruns this, not the sidebar and the rest of the page."""
    profile.mark("run start")
    draw_col, say_col, out_col = st.columns([1, 0.95, 1.5], gap="medium")
    with draw_col:
        st.subheader("1 · Draw")
        try:
            drawing = drawing_pad(
                key="canvas", generation=generation("canvas"), brush=st.session_state.get("brush", 22)
            )
        except InvalidInput as exc:
            st.error(f"Cannot read the drawing: {exc}")
            drawing = None
        st.button("Clear drawing", icon=":material/ink_eraser:", on_click=clear_drawing)
        st.slider("Brush width", 8, 40, 22, key="brush", help="Undo and redo are under the canvas (or Ctrl+Z, Ctrl+Y).")
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
    image_in = picture.getvalue() if picture is not None else drawing if drawing is not None else example.get("image")
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
