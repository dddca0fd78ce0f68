"""A sweep's trials as a Ray Tune grid: local Ray on 127.0.0.1, or the cluster at an address (imports Ray)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import ray
from ray import tune
from ray._private import ray_constants

from core import paths
from core.runs.sweep_trial import Engine, Progress, TrialSpec, local_workers, run_trial

LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's single-machine mode, also on Linux


def _trainable(config: dict) -> None:
    """One Tune trial: the spec's training process, watched by this Ray worker; reports its result once."""
    result = run_trial(
        TrialSpec(**config["spec"]),
        Path(config["runs_root"]),
        config["data_dir"],
        config["threads"],
        config["env"],
        where={"ray_node": ray.get_runtime_context().get_node_id()},
    )
    tune.report(
        {
            "run_id": result["run_id"],
            "state": result["state"],
            "seconds": result["seconds"],
            **{f"f1_{h}": v for h, v in result["f1"].items()},
            "resumed": bool(result.get("resumed")),
            "spawned": result.get("spawned", 0.0),
            "exited": result.get("exited", 0.0),
        }
    )


def as_result(metrics: dict) -> dict:
    return {
        "run_id": metrics["run_id"],
        "state": metrics["state"],
        "seconds": metrics["seconds"],
        "f1": {k[3:]: v for k, v in metrics.items() if k.startswith("f1_")},
        "resumed": metrics.get("resumed"),
    }


class _Reporter(tune.Callback):
    """Tune's trial events as Progress lines."""

    def __init__(self, progress: Progress, max_failures: int):
        self.progress, self.max_failures = progress, max_failures
        self.started: dict[str, float] = {}
        self.overhead: dict[str, float] = {}  # run id -> seconds the engine added around its training process

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.config["spec"]["run_id"]] = time.time()  # the last (re)start counts

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if "run_id" not in result:
            return
        run_id = result["run_id"]
        if result.get("spawned") and run_id in self.started:
            # Tune starting the trial -> the training process spawned, and its exit -> Tune reporting it here.
            self.overhead[run_id] = (result["spawned"] - self.started[run_id]) + (time.time() - result["exited"])
        self.progress.finished(as_result(result))

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.progress.error(trial.config["spec"]["run_id"], "its worker failed", retrying=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.progress.error(trial.config["spec"]["run_id"], "failed after retries", retrying=False)


def connect(engine: Engine) -> None:
    """Join the cluster at engine.address (or $RAY_ADDRESS), else start a local Ray listening on 127.0.0.1 only."""
    address = engine.address or os.environ.get("RAY_ADDRESS")
    job = ray.job_config.JobConfig(code_search_path=[str(paths.REPO_ROOT)])  # workers import core from this repo
    quiet = {"log_to_driver": False, "configure_logging": True, "logging_level": logging.WARNING}
    if address:
        ray.init(address=address, job_config=job, **quiet)
    else:
        # Ray binds its servers to the node's IP, which it takes to be the loopback address only in its
        # single-machine mode: this keeps the local Ray on 127.0.0.1.
        os.environ[LOCAL_ONLY_ENV] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False
        cpus = local_workers(engine) * max(1, engine.cpus_per_trial)
        ray.init(num_cpus=cpus, include_dashboard=False, job_config=job, **quiet)


def run(
    specs: list[TrialSpec],
    runs_root: Path,
    data_dir: str | None,
    engine: Engine,
    progress: Progress,
    storage: Path,
    name: str,
    env: dict | None = None,
) -> list[dict]:
    """Train specs on Ray Tune; one result dict per spec (state "failed" when retries ran out)."""
    started_here = not ray.is_initialized()
    if started_here:
        connect(engine)
    try:
        resources = {"cpu": engine.cpus_per_trial, "gpu": engine.gpus_per_trial}
        trainable = tune.with_resources(_trainable, resources)
        reporter = _Reporter(progress, engine.max_failures)
        space = {
            "spec": tune.grid_search([asdict(s) for s in specs]),
            "runs_root": str(runs_root),
            "data_dir": data_dir,
            "threads": engine.cpus_per_trial,
            "env": env or {},
        }
        concurrent = engine.workers if engine.address or os.environ.get("RAY_ADDRESS") else local_workers(engine)
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, trial_dirname_creator=lambda t: t.trial_id),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=engine.max_failures),
                callbacks=[reporter],
            ),
        )
        grid = tuner.fit()
        out = []
        for i in range(len(grid)):
            r = grid[i]
            if r.error is None and r.metrics and "run_id" in r.metrics:
                out.append({**as_result(r.metrics), "engine_overhead_s": reporter.overhead.get(r.metrics["run_id"])})
            else:
                out.append(
                    {
                        "run_id": r.config["spec"]["run_id"],
                        "state": "failed",
                        "seconds": 0.0,
                        "f1": {},
                        "error": str(r.error)[:300],
                    }
                )
        return out
    finally:
        if started_here:
            ray.shutdown()
