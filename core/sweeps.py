"""Sweeps: trials x seeds x grid points, each a `python -m core.train` process, on Ray Tune or local processes."""
from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core import paths, records
from core.errors import DigitsError
from core.io import UnreadableRecord, write_json
from core.limits import TRAIN_BOUNDS
from core.processes import HEARTBEAT_FILE, training_process

SWEEPS_DIR = ".sweeps"  # runs_root/.sweeps/<sweep id>.json: the plan; not a run folder (RUN_ID needs a letter first)
LABEL_FILE = "sweep.json"  # in each run folder: which sweep, trial, seed and grid point it is
HEARTBEAT_EVERY_S = 10.0  # well inside core.processes.HEARTBEAT_STALE_S
GRID_FIELDS = ("epochs", "batch_size", "lr", "dropout", "train_fraction")  # TRAIN_BOUNDS but seed: --seeds sets it
POLL_S = 1.0
ProgressFn = Callable[[str], None]


class SweepError(DigitsError, RuntimeError):
    """A sweep that cannot be planned, resumed or run."""


class TrialFailed(SweepError):
    """One trial's training process failed; the engine may retry it."""


@dataclass(frozen=True)
class TrialSpec:
    """One training of a sweep: a named trial, a seed and training overrides (the budget and a grid point)."""

    sweep_id: str
    trial: str
    seed: int
    overrides: dict = field(default_factory=dict)  # core.train flags: epochs, train_fraction, lr, ...
    grid: dict = field(default_factory=dict)  # the grid point alone (a subset of overrides), for labels
    run_id: str = ""

    def argv(self, runs_root: Path, data_dir: str | None) -> list[str]:
        args = ["-m", "core.train", "--trial", self.trial, "--seed", str(self.seed), "--run-id", self.run_id,
                "--out", str(runs_root), "--no-progress"]
        for name, value in sorted(self.overrides.items()):
            args += [f"--{name.replace('_', '-')}", repr(value) if isinstance(value, float) else str(value)]
        return args + (["--data-dir", data_dir] if data_dir else [])

    def label(self) -> dict:
        return {"sweep_id": self.sweep_id, "trial": self.trial, "seed": self.seed, "grid": self.grid}


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
        points = [dict(zip(names, values)) for values in itertools.product(*(self.grid[n] for n in names))] or [{}]
        out = []
        for seed in self.seeds:
            for g, point in enumerate(points):
                for trial in self.trials:
                    suffix = f"-g{g}" if len(points) > 1 else ""
                    out.append(TrialSpec(self.sweep_id, trial, seed, {**self.budget, **point}, point,
                                         f"{self.sweep_id}-{trial}-s{seed}{suffix}"))
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
            raise SweepError(f"--grid {name}: every value must be {'a whole number' if kind is int else 'a number'}") from None
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
    clash = set(budget) & set(grid)
    if clash:
        raise SweepError(f"{min(clash)} is given both as a budget flag and in --grid")
    return SweepPlan(sweep_id or new_sweep_id(), tuple(dict.fromkeys(trials)), tuple(dict.fromkeys(seeds)),
                     {k: v for k, v in budget.items() if v is not None}, grid, time.time())


def plan_path(runs_root: Path, sweep_id: str) -> Path:
    from core.runs import RUN_ID

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
    return SweepPlan(data["sweep_id"], tuple(data["trials"]), tuple(data["seeds"]), dict(data["budget"]),
                     {k: tuple(v) for k, v in data["grid"].items()}, data["created"])


def finished_summary(run_dir: Path) -> dict | None:
    """The summary of a run that finished, else None (running, failed, killed, unreadable or never started)."""
    try:
        status = records.read_json(run_dir / "status.json", records.STATUS)
        if not status or status["state"] != "finished":
            return None
        return records.read_json(run_dir / "summary.json", records.SUMMARY)
    except UnreadableRecord:
        return None


def headline_f1(summary: dict) -> dict:
    return {h: round(summary["final"][h]["macro_f1"], 2) for h in records.HEAD_NAMES if h in summary.get("final", {})}


# Linux: the training dies with the process that watches it (PR_SET_PDEATHSIG survives the exec), so a killed Ray
# worker or driver leaves no orphan training; if the watcher died before that was set, the training does not start.
# A trampoline instead of Popen's preexec_fn, which is unsafe in threads (Tune and the local engine watch from threads).
_DIE_WITH_PARENT = ("import ctypes, os, signal, sys; watcher = int(sys.argv[1]); "
                    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL); "
                    "os.getppid() == watcher or sys.exit(137); os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")


def _command(argv: list[str]) -> list[str]:
    if sys.platform == "linux":
        return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]
    return [sys.executable, *argv]


def _clear_attempt(run_dir: Path, runs_root: Path) -> None:
    """Remove what an earlier, unfinished attempt at this trial left, stopping its training if it still runs."""
    try:
        status = records.read_json(run_dir / "status.json", records.STATUS) or {}
    except UnreadableRecord:
        status = {}
    proc = training_process(run_dir.name, runs_root, status) if status else None
    if proc is not None:
        proc.kill()
        proc.wait(30)
    shutil.rmtree(run_dir, ignore_errors=True)


def run_trial(spec: TrialSpec, runs_root: Path, data_dir: str | None = None, threads: int = 1,
              env: dict | None = None, where: dict | None = None) -> dict:
    """Train spec in a `python -m core.train` process and wait; its records land in runs_root/<run_id>.

    A trial that finished already is not trained again (resume); an unfinished earlier attempt is cleared first.
    where: more for the run's label (the Ray node). Returns {"run_id", "state", "seconds", "f1": {head: final
    macro-F1}}; TrialFailed when training fails."""
    runs_root = Path(runs_root).resolve()
    run_dir = runs_root / spec.run_id
    done = finished_summary(run_dir)
    if done is not None:
        return {"run_id": spec.run_id, "state": "finished", "seconds": 0.0, "f1": headline_f1(done), "resumed": True}
    if run_dir.exists():
        _clear_attempt(run_dir, runs_root)
    run_dir.mkdir(parents=True)
    host = socket.gethostname()
    write_json(run_dir / LABEL_FILE, {**spec.label(), "host": host, "worker_pid": os.getpid(), **(where or {})})
    child_env = {**os.environ, **(env or {}), "DIGITS_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    started, spawned = time.perf_counter(), time.time()
    with open(run_dir / "train.log", "wb") as log:
        proc = subprocess.Popen(_command(spec.argv(runs_root, data_dir)), cwd=paths.REPO_ROOT, env=child_env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        # Written before the training gets going (as core.runs.start_training does), so the run lists at once.
        write_json(run_dir / "status.json", {"state": "running", "pid": proc.pid, "started": time.time(),
                                             "trial": spec.trial, "phase": "starting"})
        beat = 0.0
        while proc.poll() is None:
            if time.monotonic() - beat >= HEARTBEAT_EVERY_S:
                beat = time.monotonic()
                write_json(run_dir / HEARTBEAT_FILE, {"at": time.time(), "host": host, "pid": os.getpid()})
            try:
                proc.wait(POLL_S)
            except subprocess.TimeoutExpired:
                pass
    (run_dir / HEARTBEAT_FILE).unlink(missing_ok=True)
    seconds, exited = round(time.perf_counter() - started, 2), time.time()
    summary = finished_summary(run_dir)
    if summary is not None:
        return {"run_id": spec.run_id, "state": "finished", "seconds": seconds, "f1": headline_f1(summary),
                "spawned": spawned, "exited": exited}
    if (run_dir / "cancel.json").exists():  # cancelled from the app or `core.runs cancel`: not retried
        return {"run_id": spec.run_id, "state": "cancelled", "seconds": seconds, "f1": {}}
    raise TrialFailed(f"{spec.run_id}: training exited with code {proc.returncode}: {_last_line(run_dir / 'train.log')}")


def _last_line(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1][:300] if lines else "(empty log)"


@dataclass
class Progress:
    """Counts finished trials and prints one line for each, with the live count."""

    total: int
    out: ProgressFn = print
    after: Callable[[dict], None] | None = None  # called with each finished trial's result (the driver exports it)
    done: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __getstate__(self) -> dict:  # Tune pickles its callbacks, and with them this
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, lock=threading.Lock())

    def finished(self, result: dict) -> None:
        with self.lock:
            self.done += 1
            f1 = " ".join(f"{h} {v:.2f}" for h, v in result.get("f1", {}).items())
            how = "already finished" if result.get("resumed") else f"{result.get('seconds', 0):.0f} s"
            self.out(f"[{self.done}/{self.total} done, {self.failed} failed] {result['run_id']} {result['state']}: "
                     f"F1 {f1 or '-'} ({how})")
        if self.after and result["state"] == "finished":
            self.after(result)

    def error(self, run_id: str, message: str, retrying: bool) -> None:
        with self.lock:
            if not retrying:
                self.failed += 1
            self.out(f"[{self.done}/{self.total} done, {self.failed} failed] {run_id} "
                     f"{'failed, retrying' if retrying else 'FAILED'}: {message}")


@dataclass(frozen=True)
class Engine:
    """How to run: Ray (local or the cluster at address) or local processes; resources per trial."""

    kind: str = "auto"  # "auto": Ray if importable, "ray", or "local"
    address: str | None = None
    workers: int | None = None  # trials at once (default: cores // cpus_per_trial on a local engine)
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0
    max_failures: int = 2


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        return False
    return True


def local_workers(engine: Engine) -> int:
    cores = os.cpu_count() or 1
    return max(1, min(engine.workers or cores // max(1, engine.cpus_per_trial), cores))


def run_local(specs: list[TrialSpec], runs_root: Path, data_dir: str | None, engine: Engine, progress: Progress,
              env: dict | None = None) -> list[dict]:
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


def run_ray(specs: list[TrialSpec], runs_root: Path, data_dir: str | None, engine: Engine, progress: Progress,
            storage: Path, name: str, env: dict | None = None) -> list[dict]:
    """The trials as a Ray Tune grid: one trial per spec, retried by Tune (FailureConfig) when its worker dies."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # read when Ray is imported: no usage reports
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console tables off (verbose=0); Progress prints
    from core import ray_engine

    return ray_engine.run(specs, runs_root, data_dir, engine, progress, storage, name, env)


def run_sweep(plan: SweepPlan, runs_root: Path, engine: Engine = Engine(), data_dir: str | None = None,
              results_dir: Path | None = None, out: ProgressFn = print, env: dict | None = None) -> list[dict]:
    """Train every trial of plan not finished yet; export each finished one to results_dir/<sweep_id>/ if given."""
    runs_root = Path(runs_root).resolve()
    save_plan(plan, runs_root)
    specs = plan.specs()
    todo = [s for s in specs if finished_summary(runs_root / s.run_id) is None]
    by_run = {s.run_id: s for s in specs}
    export = (lambda r: export_result(plan, by_run[r["run_id"]], runs_root, Path(results_dir))) if results_dir else None
    progress = Progress(len(specs), out, export, done=len(specs) - len(todo))
    kind = engine.kind
    if kind == "auto":
        kind = "ray" if ray_available() else "local"
        if kind == "local":
            out(f"Ray is not installed (pip install -r requirements-ray.txt): running the trials in local processes, "
                f"at most {local_workers(engine)} at a time.")
    if kind == "ray" and not ray_available():
        raise SweepError("--engine ray needs Ray: pip install -r requirements-ray.txt")
    out(f"sweep {plan.sweep_id}: {len(specs)} trials, {len(specs) - len(todo)} finished already, {len(todo)} to run "
        f"on {'Ray' + (' at ' + engine.address if engine.address else ' (local)') if kind == 'ray' else 'local processes'}")
    if todo:
        if kind == "ray":
            storage = runs_root / SWEEPS_DIR / f"{plan.sweep_id}.tune"  # Tune's own state, one folder per attempt
            results = run_ray(todo, runs_root, data_dir, engine, progress, storage, f"attempt-{int(time.time())}", env)
        else:
            results = run_local(todo, runs_root, data_dir, engine, progress, env)
    else:
        results = []
    if results_dir:
        export_results(plan, runs_root, Path(results_dir))
    return results


def export_result(plan: SweepPlan, spec: TrialSpec, runs_root: Path, results_dir: Path) -> Path | None:
    """A finished trial as a result record (no weights) in results_dir/<sweep_id>/<run_id>.json; None if unfinished."""
    from core.results import result_from_run, save_result

    run_dir = Path(runs_root) / spec.run_id
    if finished_summary(run_dir) is None:
        return None
    record = result_from_run(run_dir, entry=spec.run_id, kind="sweep-trial", sweep=spec.label(), budget=plan.budget)
    return save_result(record, Path(results_dir) / plan.sweep_id / f"{spec.run_id}.json")


def export_results(plan: SweepPlan, runs_root: Path, results_dir: Path) -> list[Path]:
    """Every finished trial of plan, exported by export_result."""
    return [p for s in plan.specs() if (p := export_result(plan, s, runs_root, results_dir))]
