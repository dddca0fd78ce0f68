"""The shared sidebar: which model is active, the retrain form, and the live progress of a training."""

from __future__ import annotations

import streamlit as st

from core import deployment
from core.data import status as datastatus
from core.errors import DigitsError
from core.runs.listing import active_training, list_runs, run_info
from core.runs.store import (
    TrainingBusy,
    TrainingLimit,
    TrainingOff,
    TrainRequest,
    cancel,
    may_cancel,
    recent_starts,
    start_training,
)
from core.trials import TRIALS
from ui import state

B = TrainRequest.BOUNDS


def render() -> None:
    with st.sidebar:
        _active_model()
        st.divider()
        settings = _settings()
        _retrain_form(settings)
        _progress_panel(settings)


def _settings() -> deployment.Deployment | None:
    """The deployment setting, or None (training off) with a message when it is invalid."""
    try:
        return deployment.load()
    except deployment.DeploymentError as exc:
        st.error(f"Training is off: this server's deployment setting is invalid ({exc}).")
        return None


def _active_model() -> None:
    st.subheader("Active model")
    finished = [r for r in list_runs() if r.state == "finished"]
    options = ["default"] + [r.run_id for r in finished]
    if st.session_state.get("active_run") not in options:
        st.session_state.active_run = "default"

    def label(run_id: str) -> str:
        if run_id == "default":
            return f"Default weights ({state.default_weights().name})"
        run = next(r for r in finished if r.run_id == run_id)
        f1 = ((run.summary or {}).get("best") or {}).get("fused", {}).get("macro_f1")
        return f"{run_id}" + (f" · F1 {f1:.1f}" if f1 is not None else "")

    st.selectbox(
        "Serve predictions with",
        options,
        key="active_run",
        format_func=label,
        help="Only finished runs can be made active; the choice holds for this browser session.",
    )
    # The sidebar is drawn before the page waits for the model, so while it loads the status checks again
    # each second; otherwise it would say "Loading" until the visitor's next click.
    polling = not state.is_ready()
    st.session_state._polling_model = polling
    st.fragment(_model_status, run_every=1.0 if polling else None)()


def _model_status() -> None:
    if not state.is_ready():
        st.caption("Loading the model in the background…")
        return
    if st.session_state.pop("_polling_model", False):
        # Only a run of the whole app stops the poll, and the draw page's strokes rerun just their fragment.
        st.rerun(scope="app")
    p = state.predictor(show_errors=False)
    if p is not None:
        st.caption(f"Loaded: {p.config.name} · {' + '.join(p.modalities)}")


def _retrain_form(settings: deployment.Deployment | None) -> None:
    st.subheader("Retrain")
    if settings is None:
        return
    if not settings.training:
        st.info("Training is turned off on this server. The leaderboard still shows every run and result.")
        return
    if settings.trainings_per_hour is not None:
        left = max(0, settings.trainings_per_hour - len(recent_starts()))
        st.caption(f"This server allows {settings.trainings_per_hour} trainings per hour; {left} left now.")
    with st.container(border=True):  # plain widgets, not st.form: AppTest cannot submit a form in the sidebar
        trial = st.selectbox(
            "Trial preset",
            list(TRIALS),
            index=list(TRIALS).index("fused"),
            key="train_trial",
            format_func=lambda t: f"{t}: {TRIALS[t].summary}",
        )
        epochs = st.number_input("Epochs", *B["epochs"], value=3, step=1)
        batch = st.select_slider("Batch size", [8, 16, 32, 64, 128, 256, 512], value=64)
        lr = st.number_input("Learning rate", *B["lr"], value=1e-3, step=1e-4, format="%.5f")
        dropout = st.slider("Dropout", *B["dropout"], value=0.3, step=0.05)
        fraction = st.slider("Fraction of the training data", *B["train_fraction"], value=0.2, step=0.01)
        seed = st.number_input("Seed", *B["seed"], value=0, step=1)
        submitted = st.button("Start training", type="primary", key="start_training")
    if submitted:
        missing = datastatus.missing(state.data_root())
        if missing:
            st.error(f"Training needs the datasets: {missing}. Download them on the Explore page.")
            return
        request = TrainRequest(
            trial=trial,
            epochs=int(epochs),
            batch_size=int(batch),
            lr=float(lr),
            dropout=float(dropout),
            train_fraction=float(fraction),
            seed=int(seed),
        )
        try:
            run_id = start_training(
                request, data_dir=str(state.data_root()), session=state.session_token(), settings=settings
            )
        except TrainingBusy as exc:
            st.warning(f"Not started: {exc}. One training at a time.")
        except (TrainingLimit, TrainingOff) as exc:
            st.warning(f"Not started: {exc}.")
        except (ValueError, DigitsError) as exc:
            st.error(f"Not started: {exc}")
        else:
            st.session_state.watch_run = run_id
            st.success(f"Started {run_id}.")


def _progress_panel(settings: deployment.Deployment | None) -> None:
    running = active_training()
    if running:
        st.session_state.watch_run = running.run_id
    st.fragment(_panel, run_every=2.0 if running else None)(settings)


PHASES = {"starting": "starting…", "loading data": "loading the data…"}


def _panel(settings: deployment.Deployment | None) -> None:
    watched = st.session_state.get("watch_run")
    if not watched:
        return
    try:
        run = run_info(watched)
    except DigitsError:
        return
    if run.state == "missing":  # deleted by the retention limit
        del st.session_state.watch_run
        return
    if run.state == "running":
        total = run.epochs_total or 1
        st.progress(
            min(1.0, run.epochs_done / total),
            text=f"Training {run.trial}: " + (PHASES.get(run.phase) or f"epoch {run.epochs_done} of {total}"),
        )
        if run.history:
            last = run.history[-1]
            st.caption(
                f"loss {last.get('loss')} · val F1 fused {last.get('val_fused_macro_f1', '–')} · "
                f"{last.get('seconds')} s/epoch"
            )
        # With the setting invalid, a visitor may still cancel the runs their own session started.
        if not may_cancel(run, state.session_token(), settings or deployment.Deployment()):
            st.caption("Started from another browser session: only that session can cancel it.")
        elif st.button("Cancel training", key="cancel_training"):
            try:
                cancel(run.run_id, session=state.session_token(), settings=settings or deployment.Deployment())
            except DigitsError as exc:
                st.error(f"Not cancelled: {exc}")
            else:
                st.info("Cancelling…")
        return
    if st.session_state.get("seen_end") != watched:
        st.session_state.seen_end = watched
        st.rerun(scope="app")  # the run just ended: refresh the leaderboard and the model list
    message = {"finished": st.success, "cancelled": st.warning}.get(run.state, st.error)
    message(f"Last training {run.run_id}: {run.state}" + (f" ({run.error[:300]})" if run.error else ""))
