"""Sweeps: trials x seeds x grid points, each a `python -m core.train` process, on Ray Tune or local processes."""

from __future__ import annotations

import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.io import UnreadableRecord, write_json
from core.limits import TRAIN_BOUNDS
from core.runs import records
from core.runs.listing import RUN_ID
from core.runs.sweep_trial import (
    Engine,
    Progress,
    ProgressFn,
    SweepError,
    TrialFailed,
    TrialSpec,
    finished_summary,
    local_workers,
    ray_available,
    run_trial,
)

SWEEPS_DIR = ".sweeps"  # runs_root/.sweeps/<sweep id>.json: the plan; not a run folder (RUN_ID needs a letter first)
# What every trial of a sweep shares may exceed the app's bounds (the seed trained 100 epochs), within reason.
BUDGET_CHECKS = (
    ("epochs", lambda v: isinstance(v, int) and v >= 1, "a whole number of at least 1"),
    ("train_fraction", lambda v: 0 < v <= 1, "above 0 and at most 1"),
    ("limit", lambda v: isinstance(v, int) and v >= 2, "a whole number of at least 2"),
    ("eval_limit", lambda v: isinstance(v, int) and v >= 1, "a whole number of at least 1"),
)
GRID_FIELDS = ("epochs", "batch_size", "lr", "dropout", "train_fraction")  # TRAIN_BOUNDS but seed: --seeds sets it


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep trains; saved as runs_root/.sweeps/<sweep_id>.json so --resume can finish it."""

    sweep_id: str
    trials: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: dict  # overrides every trial shares: epochs, train_fraction, limit, eval_limit
    grid: dict  # field -> values; every combination is trained
    created: float

    def specs(self) -> list[TrialSpec]:
        """Seed-major order: every trial's first seed before any second seed, so a sweep cut short still compares."""
        names = list(self.grid)
        combos = itertools.product(*(self.grid[n] for n in names))
        points = [dict(zip(names, values, strict=True)) for values in combos] or [{}]
        out = []
        for seed in self.seeds:
            for g, point in enumerate(points):
                for trial in self.trials:
                    suffix = f"-g{g}" if len(points) > 1 else ""
                    out.append(
                        TrialSpec(
                            self.sweep_id,
                            trial,
                            seed,
                            {**self.budget, **point},
                            point,
                            f"{self.sweep_id}-{trial}-s{seed}{suffix}",
                        )
                    )
        return out


def new_sweep_id() -> str:
    return f"sweep-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"


def parse_grid(items: list[str]) -> dict:
    """["lr=1e-3,3e-4", "dropout=0.2,0.3"] -> {"lr": (0.001, 0.0003), "dropout": (0.2, 0.3)}, inside TRAIN_BOUNDS."""
    grid = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in GRID_FIELDS:
            raise SweepError(f"--grid takes FIELD=V1,V2,... with FIELD one of {', '.join(GRID_FIELDS)}; not {item!r}")
        lo, hi = TRAIN_BOUNDS[name]
        kind = int if isinstance(lo, int) and isinstance(hi, int) else float
        try:
            parsed = tuple(kind(v) for v in values.split(",") if v.strip())
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise SweepError(f"--grid {name}: every value must be {what}") from None
        if not parsed or any(not lo <= v <= hi for v in parsed):
            raise SweepError(f"--grid {name}: values must lie between {lo} and {hi}, not {values!r}")
        grid[name] = tuple(dict.fromkeys(parsed))
    return grid


def make_plan(trials: list[str], seeds: list[int], budget: dict, grid: dict, sweep_id: str | None = None) -> SweepPlan:
    from core.trials import TRIALS

    unknown = [t for t in trials if t not in TRIALS]
    if unknown:
        raise SweepError(f"unknown trial {unknown[0]!r}; choose from {', '.join(TRIALS)}")
    if not trials or not seeds:
        raise SweepError("a sweep needs at least one trial and one seed")
    lo, hi = TRAIN_BOUNDS["seed"]
    if any(not lo <= s <= hi for s in seeds):
        raise SweepError(f"seeds must lie between {lo} and {hi}")
    budget = {k: v for k, v in budget.items() if v is not None}
    for name, ok, what in BUDGET_CHECKS:
        if name in budget and not ok(budget[name]):
            raise SweepError(f"--{name.replace('_', '-')} must be {what}, not {budget[name]!r}")
    clash = set(budget) & set(grid)
    if clash:
        raise SweepError(f"{min(clash)} is given both as a budget flag and in --grid")
    return SweepPlan(
        sweep_id or new_sweep_id(),
        tuple(dict.fromkeys(trials)),
        tuple(dict.fromkeys(seeds)),
        budget,
        grid,
        time.time(),
    )


def plan_path(runs_root: Path, sweep_id: str) -> Path:
    if not isinstance(sweep_id, str) or not RUN_ID.fullmatch(sweep_id):
        raise SweepError(f"{sweep_id!r} is not a sweep id")
    return Path(runs_root) / SWEEPS_DIR / f"{sweep_id}.json"


def save_plan(plan: SweepPlan, runs_root: Path) -> Path:
    return write_json(plan_path(runs_root, plan.sweep_id), asdict(plan))


def load_plan(runs_root: Path, sweep_id: str) -> SweepPlan:
    path = plan_path(runs_root, sweep_id)
    try:
        data = records.read_json(path, records.SWEEP_PLAN)
    except UnreadableRecord as exc:
        raise SweepError(f"sweep {sweep_id}: its plan cannot be read ({exc})") from None
    if data is None:
        raise SweepError(f"no sweep {sweep_id} in {Path(runs_root)} (no {path.name} in {SWEEPS_DIR}/)")
    return SweepPlan(
        data["sweep_id"],
        tuple(data["trials"]),
        tuple(data["seeds"]),
        dict(data["budget"]),
        {k: tuple(v) for k, v in data["grid"].items()},
        data["created"],
    )


def run_local(
    specs: list[TrialSpec],
    runs_root: Path,
    data_dir: str | None,
    engine: Engine,
    progress: Progress,
    env: dict | None = None,
) -> list[dict]:
    """Each trial in its own process, at most local_workers() at once; a failed trial is retried max_failures times."""

    def attempt(spec: TrialSpec) -> dict:
        for n in range(engine.max_failures + 1):
            try:
                return run_trial(spec, runs_root, data_dir, engine.cpus_per_trial, env)
            except TrialFailed as exc:
                progress.error(spec.run_id, str(exc), retrying=n < engine.max_failures)
        return {"run_id": spec.run_id, "state": "failed", "seconds": 0.0, "f1": {}}

    results = []
    with ThreadPoolExecutor(local_workers(engine)) as pool:
        for future in as_completed([pool.submit(attempt, s) for s in specs]):
            result = future.result()
            results.append(result)
            if result["state"] != "failed":
                progress.finished(result)
    return results


def run_ray(specs: list[TrialSpec], *args, **kwargs) -> list[dict]:
    """The trials as a Ray Tune grid: one trial per spec, retried by Tune (FailureConfig) when its worker dies.
    The parameters are core.runs.ray_engine.run's, imported only here: Ray reads the settings below at import."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # read when Ray is imported: no usage reports
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console tables off (verbose=0); Progress prints
    from core.runs import ray_engine

    return ray_engine.run(specs, *args, **kwargs)


def run_sweep(
    plan: SweepPlan,
    runs_root: Path,
    engine: Engine | None = None,
    data_dir: str | None = None,
    results_dir: Path | None = None,
    out: ProgressFn = print,
    env: dict | None = None,
    only: list[str] | None = None,
) -> list[dict]:
    """Train every trial of plan not finished yet (only these trials of it, when given: a resume that puts some
    trials' seeds first); export each finished one to results_dir/<sweep_id>/ if given."""
    runs_root, engine = Path(runs_root).resolve(), engine or Engine()
    outside = sorted(set(only or ()) - set(plan.trials))
    if outside:
        raise SweepError(f"sweep {plan.sweep_id} has no trial {outside[0]!r}; its trials: {', '.join(plan.trials)}")
    save_plan(plan, runs_root)
    specs = [s for s in plan.specs() if not only or s.trial in only]
    todo = [s for s in specs if finished_summary(runs_root / s.run_id) is None]
    by_run = {s.run_id: s for s in specs}
    export = (lambda r: export_result(plan, by_run[r["run_id"]], runs_root, Path(results_dir))) if results_dir else None
    progress = Progress(len(specs), out, export, done=len(specs) - len(todo))
    kind = engine.kind
    if kind == "auto":
        kind = "ray" if ray_available() else "local"
        if kind == "local":
            out(
                f"Ray is not installed (pip install -r requirements-ray.txt): running the trials in local processes, "
                f"at most {local_workers(engine)} at a time."
            )
    if kind == "ray" and not ray_available():
        raise SweepError("--engine ray needs Ray: pip install -r requirements-ray.txt")
    where = "local processes" if kind != "ray" else "Ray " + (f"at {engine.address}" if engine.address else "(local)")
    out(
        f"sweep {plan.sweep_id}: {len(specs)} trials, {len(specs) - len(todo)} finished already, {len(todo)} to run "
        f"on {where}"
    )
    if todo:
        if kind == "ray":
            storage = runs_root / SWEEPS_DIR / f"{plan.sweep_id}.tune"  # Tune's own state, one folder per attempt
            results = run_ray(todo, runs_root, data_dir, engine, progress, storage, f"attempt-{int(time.time())}", env)
        else:
            results = run_local(todo, runs_root, data_dir, engine, progress, env)
    else:
        results = []
    if results_dir:
        for spec in specs:
            export_result(plan, spec, runs_root, Path(results_dir))
    return results


def export_result(plan: SweepPlan, spec: TrialSpec, runs_root: Path, results_dir: Path) -> Path | None:
    """A finished trial as a result record (no weights) in results_dir/<sweep_id>/<run_id>.json; None if unfinished."""
    from core.runs.results import result_from_run, save_result

    run_dir = Path(runs_root) / spec.run_id
    if finished_summary(run_dir) is None:
        return None
    record = result_from_run(run_dir, entry=spec.run_id, kind="sweep-trial", sweep=spec.label(), budget=plan.budget)
    return save_result(record, Path(results_dir) / plan.sweep_id / f"{spec.run_id}.json")


def export_results(plan: SweepPlan, runs_root: Path, results_dir: Path) -> list[Path]:
    """Every finished trial of plan, exported by export_result."""
    return [p for s in plan.specs() if (p := export_result(plan, s, runs_root, results_dir))]
