"""Print a committed sweep's trials over seeds as the markdown table in docs/results.md (Sweeps), with Welch's t-test
of try10 against every other trial (fused head and audio probe).

    python -m bench.sweep_table [SWEEP_ID] [--results results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scipy import stats

from core import paths
from core.runs.leaderboard import SPREADS, seed_rows, seed_table


def _pm(mean, sd) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")


def _diff(value, beyond) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" + {True: " **beyond**", False: "", None: " (1 seed)"}[beyond]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", nargs="?", help="sweep id (default: the newest in results/sweeps)")
    p.add_argument("--results", default=str(paths.RESULTS_DIR))
    args = p.parse_args()
    rows = seed_rows(Path(args.results), Path("/nonexistent-runs"))  # committed records only
    sweep = args.sweep or (rows[0].sweep_id if rows else None)
    rows = [r for r in rows if r.sweep_id == sweep]
    if not rows:
        raise SystemExit("no sweep records found")
    by_trial = {r.trial: r for r in rows}
    print(f"sweep {sweep}: {sum(len(r.seeds) for r in rows)} trainings; beyond = more than {SPREADS:g} seed sd\n")
    print(
        "| trial | seeds | F1 fused | F1 image probe | F1 audio probe | seed F1 final | fused − seed | fused − best "
        "| try10 vs it, Welch p: fused / audio probe |"
    )
    print("|---|---|---|---|---|---|---|---|---|")

    def welch(r, head: str) -> str:
        a, b = ten.f1.get(head, []) if ten else [], r.f1.get(head, [])
        return f"{stats.ttest_ind(a, b, equal_var=False).pvalue:.2f}" if len(a) > 1 and len(b) > 1 else "-"

    ten = by_trial.get("try10")
    for row, r in zip(seed_table(rows), rows, strict=True):
        p_value = "-" if r is ten else f"{welch(r, 'fused')} / {welch(r, 'audio')}"
        best = "best" if row["best trial"] == r.trial else _diff(row["vs best"], row["vs best beyond spread"])
        print(
            f"| {r.trial} | {len(r.seeds)} | {_pm(r.mean('fused'), r.sd('fused'))} | "
            f"{_pm(r.mean('image'), r.sd('image'))} | {_pm(r.mean('audio'), r.sd('audio'))} | "
            f"{r.reported_final if r.reported_final is not None else '-'} | "
            f"{_diff(row['vs seed F1'], row['vs seed beyond spread'])} | {best} | {p_value} |"
        )


if __name__ == "__main__":
    main()
