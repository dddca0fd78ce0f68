"""Teach it your voice: record each digit once, adapt the audio head, reset, download and upload the profile.

Everything lives in this browser session's st.session_state: a profile never touches weights/ or another visitor."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import streamlit as st

from core.errors import DataNotFound, DigitsError
from ui import state

DIGITS = range(10)
KEY = "teach_voice"  # session_state: {"takes": {digit: [take, ...]}, "version": {digit: n}, "digit": d}
PROFILE = "voice_profile"  # session_state: the active core.model.adapt.VoiceProfile
JOB = "teach_voice_job"  # session_state: (Future, progress dict) of the adaptation running for this session
POLL_S = 0.4
# Takes a user may give of one digit: three took held-out speakers from 97.2 to 98.3 % and the hardest from 94.4
# to 96.1 % (docs/results.md, Your voice); more would lengthen the adaptation for little.
MAX_TAKES = 3
# Adaptation fine-tunes two small copies of the audio encoder for 1-3 s: off the script thread, one at a time, so
# a second visitor's adaptation waits instead of halving everyone's speed on this 2-core server.
_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="teach-voice")


def _store() -> dict:
    if KEY not in st.session_state:
        st.session_state[KEY] = {"takes": {}, "version": {d: 0 for d in DIGITS}, "digit": 0}
    return st.session_state[KEY]


def active_profile(predictor):
    """The session's voice profile if it was made with predictor's model, else None."""
    profile = st.session_state.get(PROFILE)
    return profile if profile is not None and predictor is not None and profile.model_id == predictor.model_id else None


def section() -> None:
    """The "Teach it your voice" expander of the Draw & speak page."""
    store = _store()
    profile = st.session_state.get(PROFILE)
    with st.expander("Teach it your voice", expanded=bool(store["takes"]) or profile is not None):
        st.caption(
            "Say each digit once. The audio head then adapts to your voice in a few seconds, for this "
            f"browser session only: nothing is stored on the server. Up to {MAX_TAKES} takes of a digit fit your "
            "voice more closely."
        )
        if st.session_state.get("teach_note"):
            st.info(st.session_state.teach_note)
        if profile is not None:
            _profile_status(profile)
        _progress_row(store)
        _recorder(store)
        _adapt_row(store)
        _upload()


def _progress_row(store: dict) -> None:
    takes = store["takes"]

    def label(d: int) -> str:
        if d not in takes:
            return str(d)
        if not _done(takes[d]):
            return f"{d} !"
        return f"{d} ✓" if len(takes[d]) == 1 else f"{d} ✓×{len(takes[d])}"

    picked = st.segmented_control(
        "Digits recorded (pick one to record, replay or re-record it)",
        list(DIGITS),
        format_func=label,
        default=store["digit"],
        key=f"teach_pick_{store['digit']}",
    )
    if picked is not None and picked != store["digit"]:
        store["digit"] = picked
        st.rerun()
    total = sum(len(t) for t in takes.values())
    done = sum(_done(t) for t in takes.values())
    several = any(len(t) > 1 for t in takes.values())
    st.caption(f"{done} of 10 digits recorded" + (f" ({total} recordings)." if several else "."))


def _usable(rec: dict) -> bool:
    return not rec["enrollment"].other_digit or rec["confirmed"]


def _done(takes: list[dict]) -> bool:
    """A digit is ready when it has a take and the model's doubts about each take were answered."""
    return bool(takes) and all(_usable(r) for r in takes)


def _recorder(store: dict) -> None:
    """The picked digit: its takes, each to replay, confirm or drop, and a microphone for the next take."""
    d = store["digit"]
    takes = store["takes"].get(d, [])
    for i, rec in enumerate(takes):
        _recorded(store, d, i, rec)
    if len(takes) >= MAX_TAKES or (takes and not _done(takes)):
        return
    key = f"{d}_{store['version'][d]}"
    prompt = f"Say “{d}”" if not takes else f"Say “{d}” once more (optional: take {len(takes) + 1} of {MAX_TAKES})"
    spoken = st.audio_input(prompt, sample_rate=16000, key=f"teach_mic_{key}")
    uploaded = st.file_uploader(
        f"…or upload a recording of “{d}”",
        type=["wav", "flac", "ogg", "mp3", "m4a", "webm"],
        key=f"teach_upload_{key}",
    )
    given = spoken if spoken is not None else uploaded
    if given is None:
        return
    predictor = state.predictor()
    if predictor is None:
        return
    if "audio" not in predictor.modalities:
        st.warning("The active model reads images only; there is no voice to adapt.")
        return
    from core.model.adapt import enroll

    data = given.getvalue()
    try:
        enrollment = enroll(predictor, d, data)
    except DigitsError as exc:
        st.error(f"This recording of “{d}” cannot be used: {exc}")
        return
    first = not takes
    store["takes"].setdefault(d, []).append({"bytes": data, "enrollment": enrollment, "confirmed": False})
    store["version"][d] += 1  # a fresh microphone widget for the next take
    if first and not enrollment.other_digit:
        _advance(store, d)
    st.rerun()


def _advance(store: dict, d: int) -> None:
    """On to the next digit still to say, if any."""
    missing = [x for x in DIGITS if x not in store["takes"]]
    if missing:
        store["digit"] = next((x for x in missing if x > d), missing[0])


def _recorded(store: dict, d: int, i: int, rec: dict) -> None:
    e = rec["enrollment"]
    takes = store["takes"][d]
    st.audio(rec["bytes"])
    which = f"Your “{d}”" if len(takes) == 1 else f"Take {i + 1} of “{d}”"
    st.caption(f"{which}: {e.word_seconds:.2f} s of speech; the shipped model hears {e.heard} ({e.heard_p:.0%}).")
    if e.other_digit and not rec["confirmed"]:
        st.warning(
            f"The model is sure this is {e.heard} ({e.heard_p:.0%}), not {d}. If you said “{d}”, keep it; "
            + ("otherwise record it again." if len(takes) == 1 else "otherwise drop it.")
        )
        if st.button(f"Yes, I said “{d}”", key=f"teach_confirm_{d}_{i}"):
            rec["confirmed"] = True
            if len(takes) == 1:
                _advance(store, d)
            st.rerun()
    again = f"Record “{d}” again" if len(takes) == 1 else f"Drop take {i + 1}"
    if st.button(again, key=f"teach_again_{d}_{i}"):
        del takes[i]
        if not takes:
            del store["takes"][d]
        store["version"][d] += 1  # a fresh microphone widget
        st.rerun()


@st.cache_resource(max_entries=2, show_spinner=False)
def _replay(root: str, weights: str, mtime: float, _predictor):
    """Training clips replayed while fine-tuning, per dataset and weights file; None without FSDD."""
    from core.model.adapt import replay_clips

    try:
        return replay_clips(root, (_predictor.mean, _predictor.std, _predictor.config.features.utterance_norm))
    except (DataNotFound, OSError):
        return None


def _adapt_row(store: dict) -> None:
    takes = store["takes"]
    if st.session_state.get(JOB) is not None:
        st.fragment(_waiting, run_every=POLL_S)()
        return
    ready = len(takes) == 10 and all(_done(t) for t in takes.values())
    if not st.button(
        "Adapt to my voice",
        type="primary",
        disabled=not ready,
        key="teach_adapt",
        help=None if ready else "Record all ten digits first (and confirm any the model doubts).",
    ):
        return
    predictor = state.predictor()
    if predictor is None:
        return
    from pathlib import Path

    from core.model.adapt import adapt_enrollments

    source = Path(predictor.source)
    replay = _replay(str(state.data_root()), str(source), source.stat().st_mtime if source.exists() else 0.0, predictor)
    progress = {"done": 0, "total": 1, "replay": replay is not None}
    enrollments = [rec["enrollment"] for d in DIGITS for rec in takes[d]]

    def on_step(step: int, total: int) -> None:
        progress.update(done=step, total=total)

    st.session_state[JOB] = (_worker.submit(adapt_enrollments, predictor, enrollments, replay, on_step), progress)
    st.rerun()


def _waiting() -> None:
    future, progress = st.session_state[JOB]
    if not future.done():
        st.progress(progress["done"] / max(1, progress["total"]), text="Adapting to your voice…")
        return
    st.session_state[JOB] = None
    try:
        st.session_state[PROFILE] = future.result()
        if not progress["replay"]:
            st.session_state.teach_note = (
                "The FSDD training clips were not found, so only your recordings' "
                "templates adapt the model (a lighter adaptation)."
            )
    except DigitsError as exc:
        st.session_state.teach_note = f"Cannot adapt: {exc}"
    st.rerun()


def _profile_status(profile) -> None:
    from core.model.voice_profile import profile_bytes

    predictor = state.predictor(show_errors=False)
    if predictor is not None and profile.model_id != predictor.model_id:
        st.warning(
            "Your voice profile was made with another model than the active one, so it is not used. "
            "Record your digits again, or switch back to that model."
        )
    else:
        st.success(
            f"Adapted to your voice ({sum(profile.counts)} recordings). Audio predictions in this session use it."
        )
    left, right = st.columns(2)
    if left.button("Reset to the shipped model", key="teach_reset"):
        del st.session_state[PROFILE]
        st.session_state.teach_note = None
        st.rerun()
    right.download_button(
        "Download your voice profile",
        profile_bytes(profile),
        file_name="voice-profile.pt",
        mime="application/octet-stream",
        key="teach_download",
    )


def _upload() -> None:
    from core.model.voice_profile import MAX_PROFILE_BYTES, load_profile

    file = st.file_uploader(
        "Load a voice profile you downloaded before",
        type=["pt"],
        key="teach_profile_upload",
        help=f"A .pt file of at most {MAX_PROFILE_BYTES // 1024} KB from the download button above.",
    )
    if file is None or st.session_state.get("teach_loaded") == file.file_id:
        return
    predictor = state.predictor()
    if predictor is None:
        return
    try:
        profile = load_profile(file.getvalue(), predictor.model)
    except DigitsError as exc:
        st.error(f"Cannot use this voice profile: {exc}")
        return
    st.session_state.teach_loaded = file.file_id
    st.session_state[PROFILE] = profile
    st.rerun()


def explore_section() -> None:
    """Explore page: the session's recordings among the test clips in the audio embedding, before and after adapting."""
    profile = st.session_state.get(PROFILE)
    if profile is None:
        return
    with st.expander("Your voice in the audio embedding", expanded=True):
        predictor = state.predictor(show_errors=False)
        if predictor is None or profile.model_id != predictor.model_id:
            st.info("Your voice profile was made with another model than the active one.")
            return
        views = _voice_views(profile, predictor, str(state.data_root()))
        if views is None:
            st.info("The FSDD test clips are needed to place your recordings among them.")
            return
        (test_digits, coords) = views
        st.caption(
            "PCA of the audio encoder's embedding of the 300 FSDD test clips (small points) and of your "
            "recordings (large, labelled), with the shipped encoder and with the one adapted to your voice."
        )
        from ui import charts

        cols = st.columns(2)
        for col, when in zip(cols, ("before", "after"), strict=True):
            title = "Shipped encoder" if when == "before" else "Adapted to your voice"
            col.plotly_chart(
                charts.voice_in_embedding(coords[when], test_digits, profile.labels, title),
                key=f"voice_embedding_{when}",
            )


@st.cache_data(max_entries=4, show_spinner="Placing your recordings…")
def _cached_views(_profile, profile_key: int, _predictor, weights: str, root: str):
    from core.data.fsdd import OFFICIAL_TEST_TAKES
    from core.features import audio
    from core.features.banks import load_fsdd_bank
    from core.model.adapt import voice_in_embedding

    try:
        bank = load_fsdd_bank(root, 0)
    except (DataNotFound, OSError):
        return None
    test = np.isin(bank.takes, list(OFFICIAL_TEST_TAKES))
    p = _predictor
    x = audio.standardize(bank.clean[test], p.mean, p.std, p.config.features.utterance_norm)
    return bank.digits[test], voice_in_embedding(_profile, p.model, x)


def _voice_views(profile, predictor, root: str):
    # Keyed by the profile object's identity (one per adaptation or upload) and the weights file.
    return _cached_views(profile, id(profile), predictor, predictor.source, root)
