"""Mutation check: put each deliberate bug into a copy of the code and run the fast tests that must catch it.

    DIGITS_THREADS=1 DIGITS_DATA_DIR=../shared/data .venv/bin/python tests/mutants.py [--only NAME ...] [--write-doc]

Exits 0 when every mutant is caught (its tests fail), 1 when one survives or its tests cannot run, 2 when a
mutant's text is no longer in the code (update the list) or the tests fail on the unmutated copy.
docs/mutants.md says why this is a command and not a CI step, and holds the latest result (--write-doc)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "mutants.md"
PER_MUTANT_TIMEOUT_S = 900  # a hang guard: a mutant whose tests hang counts as not caught


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug: replace old (which must occur exactly once in file) with new; tests must then fail."""

    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids (a file, or file::test for every parameter of a test)
    bug: str  # what the mutant breaks, for the report


SPLITS = ("tests/unit/test_splits.py",)
MUTANTS = (
    # The splits training uses.
    Mutant(
        "train-on-test-clips",
        "core/training/dataset.py",
        "    return ~test & ~val, val, test",
        "    return ~val, val, test",
        SPLITS,
        "training takes the test clips too",
    ),
    Mutant(
        "official-test-takes-0-3",
        "core/training/dataset.py",
        "test = np.isin(bank.takes, list(OFFICIAL_TEST_TAKES))",
        "test = np.isin(bank.takes, list(OFFICIAL_TEST_TAKES)[:-1])",
        SPLITS,
        "take 4 moves from test to training",
    ),
    Mutant(
        "loso-speaker-in-validation",
        "core/training/dataset.py",
        "val = ~test & (bank.takes >= t.validation_takes[0])",
        "val = (bank.takes >= t.validation_takes[0])",
        SPLITS,
        "the held-out speaker's takes 5-9 validate",
    ),
    Mutant(
        "validation-images-in-training",
        "core/training/dataset.py",
        "tr_img, tr_lab, va_img, va_lab = images[:-n_val], labels[:-n_val],",
        "tr_img, tr_lab, va_img, va_lab = images, labels,",
        ("tests/unit/test_splits.py::test_training_images_are_neither_validation_nor_test_images",),
        "MNIST validation images are trained on",
    ),
    Mutant(
        "statistics-from-every-clip",
        "core/training/dataset.py",
        "mean, std = feature_stats(np.concatenate([train_bank.clean[:, None], train_bank.views], 1), f.utterance_norm)",
        "mean, std = feature_stats(np.concatenate([bank.clean[:, None], bank.views], 1), f.utterance_norm)",
        ("tests/unit/test_splits.py::test_features_are_standardised_with_training_statistics_only",),
        "standardisation statistics include validation and test clips",
    ),
    # Feature extraction.
    Mutant(
        "mfcc-0-to-11",
        "core/features/audio.py",
        "n_mfcc=N_COEFFS)[1:]",
        "n_mfcc=N_COEFFS)[:-1]",
        ("tests/unit/test_audio_features.py",),
        "keeps c0 and drops c12",
    ),
    Mutant(
        "energy-log10",
        "core/features/audio.py",
        "log_energy = np.log((frames",
        "log_energy = np.log10((frames",
        ("tests/unit/test_audio_features.py",),
        "log energy in the wrong base",
    ),
    Mutant(
        "mask-fill-zero",
        "core/features/audio.py",
        "fill = features.mean(axis=0)",
        "fill = np.zeros_like(features[0])",
        ("tests/unit/test_augmentation.py",),
        "SpecAugment masks filled with zeros, not the utterance mean",
    ),
    Mutant(
        "no-dc-removal",
        "core/features/audio.py",
        "    samples = samples - samples.mean()\n",
        "",
        ("tests/unit/test_preprocessing.py::test_unusable_audio_is_invalid_input",),
        "a DC-only recording passes as speech",
    ),
    Mutant(
        "resampled-to-4-khz",
        "core/features/audio.py",
        "target_sr=SAMPLE_RATE, res_type",
        "target_sr=SAMPLE_RATE // 2, res_type",
        ("tests/unit/test_preprocessing.py::test_resampled_stereo_matches_mono_8k",),
        "44.1 kHz audio resampled to 4 kHz",
    ),
    Mutant(
        "word-not-centred",
        "core/features/audio.py",
        "offset = room // 2 if offset is None",
        "offset = 0 if offset is None",
        ("tests/unit/test_audio_features.py",),
        "the word sits at the window's start in serving",
    ),
    # Image preprocessing.
    Mutant(
        "transparent-ink-inverted",
        "core/features/image.py",
        "np.where(_ink_is_dark(gray, alpha), 1 - gray, gray)",
        "np.where(_ink_is_dark(gray, alpha), gray, 1 - gray)",
        ("tests/unit/test_preprocessing.py::test_polarity_and_transparency_give_the_same_digit",),
        "dark ink on a transparent background reads as its negative",
    ),
    Mutant(
        "not-centred-by-mass",
        "core/features/image.py",
        "dy = int(round(14 - (ys * img).sum() / total))",
        "dy = 0",
        ("tests/unit/test_preprocessing.py::test_image_is_cropped_scaled_and_centred_by_mass",),
        "the digit is not moved to its centre of mass vertically",
    ),
    Mutant(
        "digit-fit-in-24-px",
        "core/features/image.py",
        "scale = 20.0 / max(h, w)",
        "scale = 24.0 / max(h, w)",
        ("tests/unit/test_preprocessing.py::test_image_is_cropped_scaled_and_centred_by_mass",),
        "the digit fills 24 px, not MNIST's 20",
    ),
    # Standardisation.
    Mutant(
        "standardise-multiplies",
        "core/features/audio.py",
        "return ((x - mean) / std).astype(np.float32)",
        "return ((x - mean) * std).astype(np.float32)",
        ("tests/unit/test_audio_features.py",),
        "features multiplied by the std instead of divided",
    ),
    Mutant(
        "utterance-mean-over-coefficients",
        "core/features/audio.py",
        "x = x - x.mean(axis=-2, keepdims=True)",
        "x = x - x.mean(axis=-1, keepdims=True)",
        ("tests/unit/test_audio_features.py",),
        "per-utterance mean taken over coefficients, not frames",
    ),
    Mutant(
        "serving-skips-utterance-norm",
        "core/predict.py",
        "standardize(features, self.mean, self.std, self.config.features.utterance_norm)",
        'standardize(features, self.mean, self.std, "none")',
        ("tests/unit/test_audio_features.py",),
        "the app standardises differently from training",
    ),
    # The fused head's choice.
    Mutant(
        "head-not-fused",
        "core/predict.py",
        'head = "fused" if "fused" in probs and img_t is not None and aud_t is not None else next(iter(probs))',
        "head = next(iter(probs))",
        ("tests/unit/test_predict.py",),
        "with both inputs the digit comes from the first head, not the fused one",
    ),
    # Checkpoint validation.
    Mutant(
        "unsafe-unpickling",
        "core/model/checkpoint.py",
        "weights_only=True,",
        "weights_only=False,",
        ("tests/unit/test_checkpoint.py::test_a_pickle_carrying_code_is_refused_and_never_run",),
        "a checkpoint's pickle may run code",
    ),
    Mutant(
        "statistics-shape-unchecked",
        "core/model/checkpoint.py",
        "stats[k].shape == (N_COEFFS,)",
        "stats[k].ndim == 1",
        ("tests/unit/test_checkpoint.py::test_another_architecture_is_refused",),
        "feature statistics of the wrong length load",
    ),
    Mutant(
        "required-keys-unchecked",
        "core/model/checkpoint.py",
        "        or any(k not in ckpt for k in REQUIRED_KEYS)\n",
        "",
        ("tests/unit/test_checkpoint.py::test_another_architecture_is_refused",),
        "another project's state_dict is not refused as such",
    ),
    # Run-id checks and the training form.
    Mutant(
        "run-id-may-start-with-a-dot",
        "core/runs/listing.py",
        'RUN_ID = re.compile(r"^[A-Za-z0-9][',
        'RUN_ID = re.compile(r"^[A-Za-z0-9._-][',
        ("tests/system/test_faults.py::test_run_ids_cannot_leave_runs",),
        "'.hidden' and '-rf' become run ids",
    ),
    Mutant(
        "run-id-match-not-fullmatch",
        "core/runs/listing.py",
        "not RUN_ID.fullmatch(run_id)",
        "not RUN_ID.match(run_id)",
        ("tests/system/test_faults.py::test_run_ids_cannot_leave_runs",),
        "'x\\n' passes as a run id",
    ),
    Mutant(
        "symlinked-run-escapes",
        "core/runs/listing.py",
        "    if path.parent != root.resolve():\n",
        "    if False:\n",
        ("tests/system/test_faults.py::test_a_symlinked_run_cannot_point_outside",),
        "a symlink leads outside runs/",
    ),
    Mutant(
        "lower-bound-exclusive",
        "core/runs/store.py",
        "not lo <= value <= hi",
        "not lo < value <= hi",
        ("tests/system/test_faults.py::test_the_exact_bounds_are_accepted_and_the_next_value_out_refused",),
        "the smallest allowed setting is refused",
    ),
    Mutant(
        "form-sends-dropout-as-lr",
        "ui/sidebar.py",
        "lr=float(lr),\n",
        "lr=float(dropout),\n",
        ("tests/app/test_pages.py::test_training_form_starts_what_it_shows_and_cancel_ends_it",),
        "the sidebar sends the dropout as the learning rate",
    ),
    # Learning and scoring.
    Mutant(
        "aux-heads-untrained",
        "core/training/loop.py",
        'scale = 1.0 if head == "fused" else aux_weight',
        'scale = 1.0 if head == "fused" else 0.0',
        ("tests/unit/test_learning.py::test_each_head_of_a_tiny_run_learns",),
        "the image and audio heads get no gradient",
    ),
    Mutant(
        "mixup-labels-unmixed",
        "core/training/loop.py",
        'own = {"image": 1.0, "audio": lam,',
        'own = {"image": 1.0, "audio": 1.0,',
        ("tests/unit/test_training.py::test_mixup_blends_each_clip_with_another_and_teaches_each_head_what_it_saw",),
        "mixup blends the clips but teaches the audio head only the first clip's label",
    ),
    Mutant(
        "audio-paired-with-other-digits",
        "core/training/loop.py",
        "clip_idx = pair_by_label(labels, tr.clip_labels, self.rng)",
        "clip_idx = pair_by_label(self.rng.permutation(labels), tr.clip_labels, self.rng)",
        ("tests/unit/test_learning.py::test_each_head_of_a_tiny_run_learns",),
        "training pairs each image with a clip of a random digit",
    ),
    Mutant(
        "micro-f1",
        "core/training/metrics.py",
        'average="macro"',
        'average="micro"',
        ("tests/unit/test_metrics.py",),
        "macro-F1 computed as micro-F1 (= accuracy)",
    ),
    Mutant(
        "loso-min-is-max",
        "core/training/loso.py",
        "worst = min(per_speaker, key=per_speaker.get)",
        "worst = max(per_speaker, key=per_speaker.get)",
        ("tests/unit/test_voices.py::test_a_tiny_loso_run_holds_each_speaker_out_and_reports_its_accuracy",),
        "the LOSO worst speaker is the best one",
    ),
    Mutant(
        "teach-first-take-only",
        "ui/teach_voice.py",
        'enrollments = [rec["enrollment"] for d in DIGITS for rec in takes[d]]',
        'enrollments = [takes[d][0]["enrollment"] for d in DIGITS]',
        ("tests/app/test_teach_voice.py::test_several_takes_of_a_digit_all_teach_the_profile",),
        "a digit's second and third takes never reach the adaptation",
    ),
)


def check_applicable(mutants, root: Path = REPO) -> list[str]:
    """Problems with the list: an old text that is not exactly once in its file, or a name used twice."""
    problems = []
    names = [m.name for m in mutants]
    problems += [f"{n}: the name is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for m in mutants:
        count = (root / m.file).read_text().count(m.old)
        if count != 1:
            problems.append(
                f"{m.name}: {m.file} holds its old text {count} times, not once; the code moved: "
                "update the mutant in tests/mutants.py"
            )
        if not all((root / t.split("::")[0]).is_file() for t in m.tests):
            problems.append(f"{m.name}: a test file in {m.tests} is missing")
    return problems


def copy_repo(dest: Path) -> None:
    """The repository's files (tracked and new, not ignored) in dest, with a private data/cache whose entries link
    to the shared feature cache: cached features are reused, anything a mutant computes stays in the copy."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    cache = dest / "data" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    shared = (REPO / "data" / "cache").resolve()
    if shared.is_dir():
        for entry in shared.iterdir():
            (cache / entry.name).symlink_to(entry)


def run_tests(copy: Path, tests: tuple[str, ...], env: dict) -> tuple[int, str, float]:
    """(pytest's exit code, its output, seconds); exit code -1 when the hang guard stopped it."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=PER_MUTANT_TIMEOUT_S,
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, output = -1, f"stopped after {PER_MUTANT_TIMEOUT_S} s\n{exc.stdout or ''}"
    return code, output, time.perf_counter() - start


def first_failure(output: str) -> str:
    match = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return match[1] if match else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/mutants.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--write-doc", action="store_true", help=f"put the result table into {DOC.relative_to(REPO)}")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list or not mutants:
        for m in MUTANTS:
            print(f"{m.name:34} {m.file:20} {m.bug}")
        return 0 if args.list else 2
    problems = check_applicable(MUTANTS)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    data = os.environ.get("DIGITS_DATA_DIR") or str(REPO.parent / "shared" / "data")
    env = {
        **os.environ,
        "DIGITS_DATA_DIR": str(Path(data).resolve()),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DIGITS_THREADS": os.environ.get("DIGITS_THREADS", "1"),
    }
    env.pop("DIGITS_WEIGHTS", None)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="digits-mutants-") as tmp:
        copy = Path(tmp)
        copy_repo(copy)
        union = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
        code, output, seconds = run_tests(copy, union, env)
        print(f"unmutated copy: {len(union)} test selections, exit code {code}, {seconds:.0f} s", flush=True)
        if code != 0:
            print(output[-4000:], file=sys.stderr)
            print("the tests fail without any mutant: fix that first", file=sys.stderr)
            return 2
        results = []
        for m in mutants:
            path = copy / m.file
            original = path.read_text()
            path.write_text(original.replace(m.old, m.new))
            try:
                code, output, seconds = run_tests(copy, m.tests, env)
            finally:
                path.write_text(original)
            verdict = "caught" if code == 1 else "SURVIVED" if code == 0 else f"ERROR (exit {code})"
            caught_by = first_failure(output) if code == 1 else output.strip().splitlines()[-1:] or ["?"]
            results.append((m, verdict, caught_by if isinstance(caught_by, str) else caught_by[0], seconds))
            print(f"{verdict:9} {m.name:34} {seconds:5.0f} s  {results[-1][2]}", flush=True)
    total = time.perf_counter() - started
    caught = sum(r[1] == "caught" for r in results)
    print(f"{caught} of {len(results)} mutants caught in {total:.0f} s")
    if args.write_doc:
        write_doc(results, total)
    return 0 if caught == len(results) else 1


def write_doc(results, total: float) -> None:
    """Replace the result section of docs/mutants.md (between its markers) with this run's table."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain")
    lines = [
        f"Run on {time.strftime('%Y-%m-%d')} at commit {commit}{' (with uncommitted changes)' if dirty else ''}: "
        f"{sum(r[1] == 'caught' for r in results)} of {len(results)} mutants caught in {total:.0f} s.",
        "",
        "| mutant | file | the bug | verdict | first failing test | s |",
        "|---|---|---|---|---|---:|",
    ]
    for m, verdict, caught_by, seconds in results:
        lines.append(f"| {m.name} | {m.file} | {m.bug} | {verdict} | `{caught_by}` | {seconds:.0f} |")
    from core.io import atomic_write

    text = DOC.read_text()
    begin, end = "<!-- mutants:begin -->", "<!-- mutants:end -->"
    head, rest = text.split(begin, 1)
    updated = head + begin + "\n" + "\n".join(lines) + "\n" + end + rest.split(end, 1)[1]
    atomic_write(DOC, lambda f: f.write(updated), mode="w")


if __name__ == "__main__":
    sys.exit(main())
