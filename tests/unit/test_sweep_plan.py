"""Sweep plans, grids, resume records, the heartbeat liveness check, the feature cache lock and the seed table."""

from __future__ import annotations

import json
import multiprocessing
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from core.io import write_json
from core.runs.leaderboard import seed_rows, seed_table
from core.runs.listing import run_info
from core.runs.sweep import SweepError, load_plan, make_plan, parse_grid, save_plan


def test_grid_parses_bounded_training_fields():
    assert parse_grid(["lr=1e-3,3e-4", "dropout=0.2,0.3,0.2", "batch-size=32"]) == {
        "lr": (1e-3, 3e-4),
        "dropout": (0.2, 0.3),
        "batch_size": (32,),
    }
    for bad, why in [
        ("seed=1,2", "FIELD"),
        ("lr", "FIELD"),
        ("lr=fast", "a number"),
        ("epochs=1.5", "whole"),
        ("dropout=0.9", "between"),
        ("lr=", "between"),
    ]:
        with pytest.raises(SweepError, match=why):
            parse_grid([bad])


def test_plan_is_seed_major_with_one_run_per_trial_seed_and_grid_point():
    plan = make_plan(
        ["try1", "try10"],
        [0, 1],
        {"epochs": 1, "train_fraction": 0.5, "limit": None},
        parse_grid(["lr=1e-3,3e-4"]),
        sweep_id="sweep-x",
    )
    specs = plan.specs()
    assert [(s.seed, s.grid["lr"], s.trial) for s in specs] == [
        (0, 1e-3, "try1"),
        (0, 1e-3, "try10"),
        (0, 3e-4, "try1"),
        (0, 3e-4, "try10"),
        (1, 1e-3, "try1"),
        (1, 1e-3, "try10"),
        (1, 3e-4, "try1"),
        (1, 3e-4, "try10"),
    ]
    assert len({s.run_id for s in specs}) == 8 and specs[2].run_id == "sweep-x-try1-s0-g1"
    argv = specs[2].argv(Path("/runs"), None)
    assert argv[:3] == ["-m", "core.train", "--trial"] and "--limit" not in argv
    assert argv[argv.index("--lr") + 1] == "0.0003" and argv[argv.index("--train-fraction") + 1] == "0.5"
    assert argv[argv.index("--run-id") + 1] == specs[2].run_id and argv[argv.index("--seed") + 1] == "0"


@pytest.mark.parametrize(
    "trials, seeds, budget, grid, why",
    [
        (["try99"], [0], {}, {}, "unknown trial"),
        ([], [0], {}, {}, "at least one"),
        (["try1"], [-1], {}, {}, "seeds"),
        (["try1"], [0], {"lr": 1e-3}, {"lr": (1e-3,)}, "both"),
    ],
)
def test_bad_plans_are_refused(trials, seeds, budget, grid, why):
    with pytest.raises(SweepError, match=why):
        make_plan(trials, seeds, budget, grid)


def test_plan_round_trips_and_bad_plans_are_named(tmp_path):
    plan = make_plan(["try2"], [0, 2], {"epochs": 3}, parse_grid(["dropout=0.2,0.3"]))
    save_plan(plan, tmp_path)
    assert load_plan(tmp_path, plan.sweep_id) == plan
    with pytest.raises(SweepError, match="no sweep"):
        load_plan(tmp_path, "sweep-none")
    with pytest.raises(SweepError, match="not a sweep id"):
        load_plan(tmp_path, "../x")
    write_json(tmp_path / ".sweeps" / "sweep-bad.json", {"sweep_id": "sweep-bad", "trials": []})
    with pytest.raises(SweepError, match="cannot be read"):
        load_plan(tmp_path, "sweep-bad")


def _running_run(root: Path, run_id: str) -> Path:
    """A run whose status says running with a pid that is not alive: killed, or on another host of a cluster."""
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    dead = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    write_json(run_dir / "status.json", {"state": "running", "pid": dead.pid, "started": time.time(), "trial": "try1"})
    return run_dir


def test_a_fresh_heartbeat_keeps_a_run_running_and_a_stale_one_does_not(tmp_path):
    run_dir = _running_run(tmp_path, "sweep-a-try1-s0")
    assert run_info(run_dir.name, tmp_path).state == "interrupted"
    write_json(run_dir / "heartbeat.json", {"at": time.time(), "host": "node-2", "pid": 1234})
    assert run_info(run_dir.name, tmp_path).state == "running"
    write_json(run_dir / "heartbeat.json", {"at": time.time() - 120, "host": "node-2", "pid": 1234})
    assert run_info(run_dir.name, tmp_path).state == "interrupted"
    write_json(run_dir / "heartbeat.json", {"at": "soon"})
    assert run_info(run_dir.name, tmp_path).state == "interrupted"  # an unreadable heartbeat says nothing


def _build_bank(cache: str, log: str) -> None:
    from core.features.banks import ClipBank, cached_bank

    def compute() -> ClipBank:
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(1.0)  # long enough that the other process asks while this one builds
        n = 3
        return ClipBank(
            np.zeros((n, 39, 13), np.float32),
            np.zeros((n, 0, 39, 13), np.float32),
            np.arange(n),
            np.array(["a"] * n),
            np.zeros(n, np.int64),
            np.array(["x.wav"] * n),
        )

    bank = cached_bank(Path(cache), compute)
    assert len(bank) == 3


def test_concurrent_processes_build_a_feature_bank_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    cache, log = tmp_path / "bank.npz", tmp_path / "builds.log"
    procs = [ctx.Process(target=_build_bank, args=(str(cache), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text() == "built\n" and cache.exists()


def _sweep_result(results: Path, sweep_id: str, trial: str, seed: int, f1: dict) -> None:
    run_id = f"{sweep_id}-{trial}-s{seed}"
    final = {h: {"accuracy": v, "macro_f1": v} for h, v in f1.items()}
    write_json(
        results / "sweeps" / sweep_id / f"{run_id}.json",
        {
            "entry": run_id,
            "run_id": run_id,
            "kind": "sweep-trial",
            "final": final,
            "best": final,
            "sweep": {"sweep_id": sweep_id, "trial": trial, "seed": seed, "grid": {}},
        },
    )


def test_seed_table_gives_mean_and_spread_and_marks_differences_beyond_it(tmp_path):
    results, runs = tmp_path / "results", tmp_path / "runs"
    fused = {"try1": [99.0, 99.2, 99.4], "try2": [98.0, 98.2, 98.4], "try10": [99.1, 99.3, 99.5]}
    for trial, values in fused.items():
        for seed, v in enumerate(values):
            _sweep_result(results, "sweep-t", trial, seed, {"fused": v, "image": 90.0 + seed, "audio": 80.0})
    _sweep_result(results, "sweep-t", "try3", 0, {"fused": 97.0})  # one seed so far: no spread
    rows = {r["trial"]: r for r in seed_table(seed_rows(results, runs))}
    assert list(rows) == ["try1", "try2", "try3", "try10"]  # in the seed's order
    one = rows["try1"]
    assert one["seeds"] == 3 and one["F1 fused mean"] == pytest.approx(statistics.mean(fused["try1"]))
    assert one["F1 fused sd"] == pytest.approx(statistics.stdev(fused["try1"]))
    assert one["F1 image mean"] == pytest.approx(91.0) and one["F1 audio sd"] == pytest.approx(0.0)
    assert one["seed F1 (final)"] == 99.4 and one["vs seed F1"] == pytest.approx(-0.2)
    assert one["vs seed beyond spread"] is False  # 0.2 < 2 x 0.2
    assert rows["try2"]["vs seed beyond spread"] is True  # 98.2 against 99.5
    assert {r["best trial"] for r in rows.values()} == {"try10"}
    assert one["vs best"] == pytest.approx(-0.1) and one["vs best beyond spread"] is False
    assert rows["try2"]["vs best beyond spread"] is True
    assert rows["try10"]["vs best beyond spread"] is None  # the best itself
    assert rows["try3"]["F1 fused sd"] is None and rows["try3"]["vs best beyond spread"] is None


def test_seed_table_reads_a_running_sweeps_finished_runs(tmp_path, tiny_run):
    import shutil

    runs = tmp_path / "runs"
    for seed in (0, 1):
        run_dir = runs / f"sweep-r-fused-s{seed}"
        shutil.copytree(tiny_run, run_dir)
        write_json(run_dir / "sweep.json", {"sweep_id": "sweep-r", "trial": "fused", "seed": seed, "grid": {}})
    status = json.loads((runs / "sweep-r-fused-s1" / "status.json").read_text())
    write_json(runs / "sweep-r-fused-s1" / "status.json", {**status, "state": "failed"})
    (row,) = seed_table(seed_rows(tmp_path / "no-results", runs))
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert row["sweep"] == "sweep-r" and row["seeds"] == 1  # the failed seed does not count
    assert row["F1 fused mean"] == pytest.approx(summary["final"]["fused"]["macro_f1"])


def test_a_resume_limited_to_trials_the_sweep_lacks_is_refused(tmp_path):
    from core.runs.sweep import run_sweep

    plan = make_plan(["try1", "try2"], [0], {"epochs": 1}, {})
    with pytest.raises(SweepError, match="no trial 'try3'"):
        run_sweep(plan, tmp_path, only=["try2", "try3"])


@pytest.mark.parametrize(
    "budget, why",
    [
        ({"epochs": 0}, "--epochs"),
        ({"train_fraction": 0.0}, "--train-fraction"),
        ({"limit": 1}, "--limit"),
        ({"eval_limit": 0}, "--eval-limit"),
    ],
)
def test_a_budget_no_training_could_run_is_refused(budget, why):
    with pytest.raises(SweepError, match=why):
        make_plan(["try1"], [0], budget, {})
