"""Print the committed trial and ablation results as the markdown tables in docs/results.md."""

from __future__ import annotations

import json

from core import paths


def cell(record: dict, which: str, head: str, key: str) -> str:
    m = (record.get(which) or {}).get(head)
    return f"{m[key]:.2f}" if m else "-"


def main() -> None:
    heads = ("fused", "image", "audio")
    print(
        "| trial | seed F1 best | seed F1 final | our F1 best (fused) | our F1 final fused / image / audio "
        "| our acc final fused / image / audio | train s |"
    )
    print("|---|---|---|---|---|---|---|")
    for i in range(1, 14):
        path = paths.RESULTS_DIR / "trials" / f"try{i}.json"
        if not path.exists():
            print(f"| try{i} | | | not run | | | |")
            continue
        r = json.loads(path.read_text())
        rep = r.get("reported") or {}
        f1 = " / ".join(cell(r, "final", h, "macro_f1") for h in heads)
        acc = " / ".join(cell(r, "final", h, "accuracy") for h in heads)
        print(
            f"| try{i} | {rep.get('f1_best') or '-'} | {rep.get('f1_final')} | {cell(r, 'best', 'fused', 'macro_f1')} "
            f"| {f1} | {acc} | {r['train_seconds']} |"
        )
    print("\n| ablation | test accuracy (final) | macro-F1 (final) | train s |\n|---|---|---|---|")
    for name in ("fused", "image_only", "audio_only"):
        path = paths.RESULTS_DIR / "ablations" / f"{name}.json"
        if path.exists():
            r = json.loads(path.read_text())
            head = {"fused": "fused", "image_only": "image", "audio_only": "audio"}[name]
            print(
                f"| {name} ({head} head) | {cell(r, 'final', head, 'accuracy')} | {cell(r, 'final', head, 'macro_f1')} "
                f"| {r['train_seconds']} |"
            )
    loso = paths.RESULTS_DIR / "ablations" / "audio_loso.json"
    if loso.exists():
        r = json.loads(loso.read_text())["loso"]
        per = ", ".join(f"{s} {a:.1f}" for s, a in r["per_speaker"].items())
        print(f"\nLOSO audio accuracy (%): {per}; mean {r['mean']:.1f}, min {r['min']:.1f}")


if __name__ == "__main__":
    main()
