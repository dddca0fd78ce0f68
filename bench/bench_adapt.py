"""Teach it your voice, measured: LOSO folds adapted to their held-out speaker from k recordings per digit.

For each FSDD speaker, the recipe's audio side trained without them (bench/loso_folds.py, trained once and
reused) is adapted with k clips per digit drawn from that speaker, then scored on the speaker's other clips;
5 random draws per k, every method on the same draws. Where a method has a setting, it is chosen per held-out
speaker on the other five speakers (nested), never on the speaker being scored. Also: the training speakers'
validation takes under a profile made for someone else ("others"), the women's and children's shifted clips of
the held-out speaker (adapted on their own shifted recordings), and adaptation time from recordings to profile.

    DIGITS_THREADS=1 DIGITS_DATA_DIR=../shared/data python -m bench.bench_adapt --jobs 2 --json results/adapt.json
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from core import paths
from core.data.fsdd import SPEAKERS
from core.features import audio
from core.model.adapt import (
    AdaptConfig,
    adapt,
    adapted_logits,
    average_weights,
    embed_and_score,
    fine_tune,
    gate_distance,
    speaker_gate,
    template_scores,
)
from core.model.checkpoint import audio_standardisation

SHIFTED = ("woman-low", "woman", "child", "young-child")
SCALES = (20.0, 40.0, 80.0, 160.0)  # template_scale candidates
PROTO_SCALES = (5.0, 10.0, 20.0, 40.0)
CHOSEN = AdaptConfig()
# What shipped before: 20 steps, the last step's weights, templates on the model's features, gated, scale 80.
PREVIOUS = AdaptConfig(steps=20, average=0.0, template_scale=80.0, template_norm="none", gated=True, fine_tunes=1)
SINGLE = replace(CHOSEN, fine_tunes=1)  # the second round's method: one fine-tune
NEW = "fine-tune 40 steps averaged + replay"  # SINGLE's fine-tuning: the prefix of its rows
MEAN = f"{CHOSEN.fine_tunes} fine-tunes' weights averaged (40 steps averaged + replay)"  # CHOSEN's rows


def draw(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of k clips per digit."""
    return np.concatenate([rng.choice(np.flatnonzero(labels == d), k, replace=False) for d in range(10)])


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def prototype_scores(emb: np.ndarray, enrol_emb: np.ndarray, enrol_y: np.ndarray) -> np.ndarray:
    """Cosine similarity to each digit's mean enrollment embedding, after removing the speaker's mean."""
    centre = enrol_emb.mean(0)
    protos = unit(np.stack([unit(enrol_emb[enrol_y == d] - centre).mean(0) for d in range(10)]))
    return unit(emb - centre) @ protos.T


def speaker_norm(raw: np.ndarray, enrol: np.ndarray, utterance_norm: str) -> np.ndarray:
    """Every clip standardised with the speaker's own per-coefficient mean and std over the enrollment frames."""
    centred = audio.standardize(raw, np.zeros(13), np.ones(13), utterance_norm)
    frames = centred[enrol].reshape(-1, audio.N_COEFFS)
    return ((centred - frames.mean(0)) / (frames.std(0) + 1e-5)).astype(np.float32)


def head_only(emb_e, z_e, y_e, replay, steps: int = 60, lr: float = 0.02, decay: float = 1e-2):
    """A residual linear correction (W, b) of the head, fitted on the enrollment embeddings plus replayed clips."""
    e, z, y = (torch.from_numpy(np.concatenate(v)) for v in ((emb_e, replay[0]), (z_e, replay[1]), (y_e, replay[2])))
    w = torch.zeros(e.shape[1], 10, requires_grad=True)
    b = torch.zeros(10, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(z + e @ w + b, y) + decay * (w**2).sum()
            loss.backward()
            opt.step()
    return w.detach().numpy(), b.detach().numpy()


def acc(logits: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float((logits.argmax(1) == labels).mean())


@torch.inference_mode()
def logits_of(net, x: np.ndarray) -> np.ndarray:
    return net(torch.from_numpy(np.ascontiguousarray(x, np.float32))).float().numpy()


def score_draw(model, fold: dict, k: int, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Accuracy (%) of every method on one draw, on the speaker's other clips ("acc") and on others' clips."""
    raw, x, emb, z, y = fold["held"]
    _, xo, o_emb, zo, yo = fold["others"]
    xr, r_emb, zr, yr = fold["replay"]
    en = draw(y, k, rng)
    rest = np.setdiff1d(np.arange(len(y)), en)
    res = {"unadapted": {"acc": acc(z[rest], y[rest]), "others": acc(zo, yo)}}
    ps, pso = prototype_scores(emb[rest], emb[en], y[en]), prototype_scores(o_emb, emb[en], y[en])
    for s in PROTO_SCALES:
        res[f"prototypes in the embedding, scale {s:g}"] = {
            "acc": acc(z[rest] + s * ps, y[rest]),
            "others": acc(zo + s * pso, yo),
        }
    res["nearest prototype alone"] = {"acc": acc(ps, y[rest]), "others": acc(pso, yo)}
    x_sn = speaker_norm(raw, en, fold["norm"])
    _, z_sn = embed_and_score(model, x_sn[rest])
    res["speaker MFCC normalisation"] = {"acc": acc(z_sn, y[rest])}
    w, b = head_only(emb[en], z[en], y[en], (r_emb, zr, yr))
    res["fine-tune the head (residual linear) + replay"] = {
        "acc": acc(z[rest] + emb[rest] @ w + b, y[rest]),
        "others": acc(zo + o_emb @ w + b, yo),
    }
    t_rest, t_oth = template_scores(x[rest], x[en], y[en]), template_scores(xo, x[en], y[en])
    res["DTW templates alone"] = {"acc": acc(-t_rest, y[rest]), "others": acc(-t_oth, yo)}
    gate = gate_distance(x[en], y[en])
    g_rest, g_oth = speaker_gate(t_rest, gate), speaker_gate(t_oth, gate)
    for s in SCALES:
        res[f"head + DTW templates, scale {s:g}"] = {
            "acc": acc(z[rest] - s * t_rest, y[rest]),
            "others": acc(zo - s * t_oth, yo),
        }
        res[f"head + DTW templates, gated, scale {s:g}"] = {
            "acc": acc(z[rest] - s * g_rest * t_rest, y[rest]),
            "others": acc(zo - s * g_oth * t_oth, yo),
        }
    started = time.perf_counter()
    net = fine_tune(model, x[en], y[en], (xr, yr), PREVIOUS)
    seconds = time.perf_counter() - started
    zf, zfo = logits_of(net, x[rest]), logits_of(net, xo)
    net0 = fine_tune(model, x[en], y[en], None, PREVIOUS)
    res["fine-tune encoder + head, no replay"] = {
        "acc": acc(logits_of(net0, x[rest]), y[rest]),
        "others": acc(logits_of(net0, xo), yo),
    }
    res["fine-tune encoder + head + replay"] = {"acc": acc(zf, y[rest]), "others": acc(zfo, yo), "seconds": seconds}
    gates = (g_rest, g_oth, z[rest], zo)
    res.update(_with_templates("fine-tune + replay + DTW templates", zf, zfo, t_rest, t_oth, gates, y[rest], yo))
    c_rest = template_scores(x[rest], x[en], y[en], CHOSEN.template_norm)
    c_oth = template_scores(xo, x[en], y[en], CHOSEN.template_norm)
    res[f"DTW templates alone ({CHOSEN.template_norm})"] = {"acc": acc(-c_rest, y[rest]), "others": acc(-c_oth, yo)}
    # CHOSEN's fine-tunes are SINGLE's from seeds 0, 1, ...: the first one is reused, not trained again.
    nets, times = [], []
    for i in range(CHOSEN.fine_tunes):
        started = time.perf_counter()
        nets.append(fine_tune(model, x[en], y[en], (xr, yr), replace(SINGLE, seed=SINGLE.seed + i)))
        times.append(time.perf_counter() - started)
    for name, net, seconds in ((NEW, nets[0], times[0]), (MEAN, average_weights(nets), sum(times))):
        zf, zfo = logits_of(net, x[rest]), logits_of(net, xo)
        res[name] = {"acc": acc(zf, y[rest]), "others": acc(zfo, yo), "seconds": seconds}
        res.update(
            _with_templates(
                f"{name} + DTW templates ({CHOSEN.template_norm})", zf, zfo, c_rest, c_oth, gates, y[rest], yo
            )
        )
    return res


def _with_templates(name, z_rest, z_oth, t_rest, t_oth, gates, y_rest, y_oth) -> dict[str, dict[str, float]]:
    """Rows for fine-tuned logits minus the template distances at each scale, plain and speaker-gated (gates: the
    gate on the speaker's and the others' clips, and the unadapted logits a gate falls back to)."""
    g_rest, g_oth, z0_rest, z0_oth = gates
    rows = {}
    for s in SCALES:
        rows[f"{name}, scale {s:g}"] = {
            "acc": acc(z_rest - s * t_rest, y_rest),
            "others": acc(z_oth - s * t_oth, y_oth),
        }
        rows[f"{name}, gated, scale {s:g}"] = {
            "acc": acc(g_rest * (z_rest - s * t_rest) + (1 - g_rest) * z0_rest, y_rest),
            "others": acc(g_oth * (z_oth - s * t_oth) + (1 - g_oth) * z0_oth, y_oth),
        }
    return rows


def score_shifted(model, stats, shifted: dict, replay, k: int, rng) -> dict[str, dict[str, float]]:
    """Unadapted, templates and the chosen method on each shifted voice, adapted on its own shifted recordings."""
    out: dict[str, dict[str, float]] = {}
    for cond, (raw, y) in shifted.items():
        en = draw(y, k, rng)
        rest = np.setdiff1d(np.arange(len(y)), en)
        x = audio.standardize(raw, *stats)
        _, z = embed_and_score(model, x[rest])
        profile = adapt(model, raw[en], y[en], CHOSEN, stats=stats, replay=replay)
        out.setdefault("unadapted", {})[cond] = acc(z, y[rest])
        out.setdefault(f"head + DTW templates, scale {PREVIOUS.template_scale:g}", {})[cond] = acc(
            z - PREVIOUS.template_scale * template_scores(x[rest], x[en], y[en]), y[rest]
        )
        out.setdefault("chosen", {})[cond] = acc(adapted_logits(profile, model, x[rest]), y[rest])
        one = adapt(model, raw[en], y[en], SINGLE, stats=stats, replay=replay)
        out.setdefault("one fine-tune (second round)", {})[cond] = acc(adapted_logits(one, model, x[rest]), y[rest])
        before = adapt(model, raw[en], y[en], PREVIOUS, stats=stats, replay=replay)
        out.setdefault("previously shipped", {})[cond] = acc(adapted_logits(before, model, x[rest]), y[rest])
    return out


def fold_data(model, ckpt, bank, speaker: str) -> dict:
    """Raw and standardised features, embeddings and logits: the held-out speaker, others' validation takes, replay."""
    stats = audio_standardisation(ckpt)
    held = bank.speakers == speaker
    val = ~held & (bank.takes >= 5) & (bank.takes < 10)  # never trained on: the fold's validation takes
    replay = ~held & (bank.takes >= 10)  # training clips of the five other speakers
    out = {"stats": stats, "norm": stats[2]}
    for name, mask in (("held", held), ("others", val)):
        x = audio.standardize(bank.clean[mask], *stats)
        out[name] = (bank.clean[mask], x, *embed_and_score(model, x), bank.digits[mask])
    xr = audio.standardize(bank.clean[replay], *stats)
    out["replay"] = (xr, *embed_and_score(model, xr), bank.digits[replay])
    return out


def run_speaker(speaker: str, fold_path: Path, root: Path, ks, draws: int, shifted_draws: int) -> dict:
    """Every method's accuracies on one held-out speaker (a separate process when --jobs > 1)."""
    from core.features.banks import load_fsdd_bank
    from core.features.conditions import condition_bank
    from core.model.checkpoint import load

    torch.set_num_threads(1)
    model, ckpt = load(fold_path)
    bank = load_fsdd_bank(root, 0)
    fold = fold_data(model, ckpt, bank, speaker)
    shifted = {}
    for cond in SHIFTED if shifted_draws else ():
        b = condition_bank(root, cond)
        m = b.speakers == speaker
        shifted[cond] = (b.clean[m], b.digits[m])
    out = {}
    for k in ks:
        rng = np.random.default_rng([k, SPEAKERS.index(speaker)])
        # The shifted voices draw from their own stream, so --shifted-draws does not change the main draws.
        shifted_rng = np.random.default_rng([k, SPEAKERS.index(speaker), 1])
        per: dict[str, dict[str, list]] = {}
        for i in range(draws):
            results = score_draw(model, fold, k, rng)
            if i < shifted_draws:
                for method, by_cond in score_shifted(
                    model, fold["stats"], shifted, fold["replay"][::3], k, shifted_rng
                ).items():
                    results.setdefault(method, {}).update(by_cond)
            for method, r in results.items():
                for what, v in r.items():
                    per.setdefault(method, {}).setdefault(what, []).append(v)
        out[k] = per
    print(f"{speaker}: done", file=sys.stderr, flush=True)
    return out


def time_adaptation(predictor, root: Path, k: int, repeats: int, rng) -> tuple[list[float], list[float]]:
    """Seconds from k recordings per digit (WAV samples) to a profile, through the app's path (replay set loaded):
    wall-clock, and this process's CPU time (what a quiet machine's wall-clock would be, on one thread)."""
    import soundfile as sf

    from core.data.fsdd import list_clips
    from core.model.adapt import replay_clips
    from core.predict import prepare_audio

    replay = replay_clips(root, (predictor.mean, predictor.std, predictor.config.features.utterance_norm))
    clips = list_clips(root)
    times, cpu = [], []
    for i in range(repeats):
        speaker = SPEAKERS[i % len(SPEAKERS)]
        chosen = [
            c
            for d in range(10)
            for c in rng.permutation([c for c in clips if c.speaker == speaker and c.digit == d])[:k]
        ]
        recordings = [sf.read(str(c.path), dtype="float32") for c in chosen]
        started, cpu_started = time.perf_counter(), time.process_time()
        features = np.stack([prepare_audio((s, r))[1] for s, r in recordings])
        adapt(predictor, features, [c.digit for c in chosen], replay=replay)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return times, cpu


def summarise(results: dict[str, dict], ks) -> dict:
    """Per method and k: mean over draws per speaker, their mean and worst, others, shifted voices; nested choices."""
    report = {"methods": {}, "nested": {}}
    for k in ks:
        per_speaker = {s: r[k] for s, r in results.items()}
        methods = next(iter(per_speaker.values()))
        table = {}
        for m in methods:
            row = {}
            if "acc" in methods[m]:
                row["per_speaker"] = {s: round(float(np.mean(per_speaker[s][m]["acc"])), 2) for s in per_speaker}
                row["mean"] = round(float(np.mean(list(row["per_speaker"].values()))), 2)
                row["worst"] = min(row["per_speaker"].values())
                row["draw_spread"] = round(
                    float(np.mean([per_speaker[s][m]["acc"] for s in per_speaker], axis=0).std()), 2
                )
            others = [v for s in per_speaker for v in per_speaker[s][m].get("others", [])]
            row["others"] = round(float(np.mean(others)), 2) if others else None
            if "seconds" in methods[m]:
                row["fine_tune_seconds_p95"] = round(
                    float(np.percentile([v for s in per_speaker for v in per_speaker[s][m]["seconds"]], 95)), 2
                )
            for cond in SHIFTED:
                vals = [float(np.mean(per_speaker[s][m][cond])) for s in per_speaker if cond in per_speaker[s][m]]
                if vals:
                    row[cond] = {"mean": round(float(np.mean(vals)), 2), "worst": round(min(vals), 2)}
            table[m] = row
        report["methods"][k] = table
        report["nested"][k] = {
            family: nested(per_speaker, family)
            for family in (
                "prototypes in the embedding",
                "head + DTW templates, scale",
                "head + DTW templates, gated",
                "fine-tune + replay + DTW templates, scale",
                "fine-tune + replay + DTW templates, gated",
                f"{NEW} + DTW templates ({CHOSEN.template_norm}), scale",
                f"{NEW} + DTW templates ({CHOSEN.template_norm}), gated",
                f"{MEAN} + DTW templates ({CHOSEN.template_norm}), scale",
            )
        }
    return report


def nested(per_speaker: dict, family: str) -> dict:
    """Each speaker scored with the family member best on the other five speakers."""
    chosen = {}
    for s, methods in per_speaker.items():
        members = [m for m in methods if m.startswith(family) and "acc" in methods[m]]
        best = max(members, key=lambda m: np.mean([np.mean(per_speaker[o][m]["acc"]) for o in per_speaker if o != s]))
        chosen[s] = (best, round(float(np.mean(methods[best]["acc"])), 2))
    scores = [a for _, a in chosen.values()]
    return {"per_speaker": chosen, "mean": round(float(np.mean(scores)), 2), "worst": min(scores)}


def print_report(report: dict) -> None:
    for k, table in report["methods"].items():
        print(
            f"\n== k = {k} recording(s) per digit: accuracy % on the held-out speaker's other clips"
            " (mean of the draws) =="
        )
        rows = sorted(table.items(), key=lambda kv: -kv[1].get("mean", -1))
        for m, row in rows:
            others = f"{row['others']:.1f}" if row.get("others") is not None else "-"
            shifted = "  ".join(f"{c} {row[c]['mean']:.1f}/{row[c]['worst']:.1f}" for c in SHIFTED if c in row)
            main = (
                f"mean {row['mean']:6.2f}  worst {row['worst']:6.2f}  spread {row['draw_spread']:.2f}"
                if "mean" in row
                else " " * 37
            )
            print(f"{m:<48} {main}  others {others:>5}  {shifted}")
        for family, n in report["nested"][k].items():
            print(
                f"nested ({family}): mean {n['mean']:.2f} worst {n['worst']:.2f}  "
                + ", ".join(f"{s} {a:.1f} ({m.rsplit(' ', 1)[-1]})" for s, (m, a) in n["per_speaker"].items())
            )
    for k, t in report.get("timing", {}).items():
        print(
            f"adaptation time, k={k} (recordings -> profile, app path): p50 {t['p50_s']:.2f} s"
            f"  p95 {t['p95_s']:.2f} s  (n={t['n']}); CPU time p50 {t['cpu_p50_s']:.2f} s  p95 {t['cpu_p95_s']:.2f} s"
        )


def main(argv: list[str] | None = None) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from bench.loso_folds import ensure_folds, folds_dir
    from core.predict import Predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial", default="fused", help="the recipe whose LOSO folds are adapted")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fold (default: the recipe's)")
    parser.add_argument(
        "--folds-dir", default=None, help="fold checkpoints (default data/loso_folds/<trial>-e<epochs>)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="folds trained, then speakers scored, this many at once")
    parser.add_argument("--draws", type=int, default=5, help="draws per speaker and k (0: only time the adaptation)")
    parser.add_argument(
        "--shifted-draws", type=int, default=5, help="draws that also score the shifted voices (0: none)"
    )
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--speakers", nargs="+", default=list(SPEAKERS))
    parser.add_argument("--timing-repeats", type=int, default=30)
    parser.add_argument("--weights", default=str(paths.DEFAULT_WEIGHTS), help="the model adaptation is timed on")
    parser.add_argument("--json", default=None, help="also write every figure here")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = paths.data_dir(args.data_dir)
    folds = ensure_folds(
        args.trial,
        root,
        args.epochs,
        folds_dir(args.trial, args.epochs, args.folds_dir),
        args.jobs,
        tuple(args.speakers),
    )
    started = time.perf_counter()
    job = (root, args.ks, args.draws, args.shifted_draws)
    if not args.draws:
        results = {}
    elif args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = {s: pool.submit(run_speaker, s, folds[s], *job) for s in args.speakers}
            results = {s: f.result() for s, f in futures.items()}
    else:
        results = {s: run_speaker(s, folds[s], *job) for s in args.speakers}
    report = summarise(results, args.ks) if results else {"methods": {}, "nested": {}}
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["timing"] = {}
    if args.timing_repeats:
        predictor = Predictor.load(args.weights)
        rng = np.random.default_rng(0)
        time_adaptation(predictor, root, 1, 1, rng)  # warm-up: librosa's and torch's first calls
        for k in args.ks:
            times, cpu = time_adaptation(predictor, root, k, args.timing_repeats, rng)
            report["timing"][k] = {
                "n": len(times),
                "p50_s": round(float(np.percentile(times, 50)), 3),
                "p95_s": round(float(np.percentile(times, 95)), 3),
                "max_s": round(max(times), 3),
                "cpu_p50_s": round(float(np.percentile(cpu, 50)), 3),
                "cpu_p95_s": round(float(np.percentile(cpu, 95)), 3),
            }
    report["config"] = CHOSEN.__dict__
    print_report(report)
    if args.json:
        from core.io import write_json

        write_json(Path(args.json), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
