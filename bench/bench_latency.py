"""Waits a visitor feels on the Draw & speak page, in headless chromium against `streamlit run app.py`.

From the last mouse-up of a drawing to the "Image prediction" card showing its digit, and from pressing stop on the
browser recorder to the "Audio prediction" card, median and p95, each broken down by the browser's own timing
(input events, websocket messages, resource timing of the upload) and the page's server-side marks (ui/profile.py,
enabled by $DIGITS_PROFILE). `--during-training` measures again while a training runs."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import streamlit_server  # the same server the browser tests start

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CANVAS = 260  # the page's canvas size in CSS pixels

# One-stroke digits (a single mouse-down ... mouse-up), as points on the canvas.
STROKES = {
    "0": [(130 + 55 * math.sin(a / 20 * 2 * math.pi), 130 - 85 * math.cos(a / 20 * 2 * math.pi)) for a in range(21)],
    "1": [(125, 40), (135, 220)],
    "2": [(80, 85), (110, 50), (160, 50), (180, 90), (150, 140), (80, 210), (195, 210)],
    "3": [(80, 55), (170, 55), (120, 125), (180, 170), (140, 215), (75, 200)],
    "6": [(170, 45), (110, 90), (85, 160), (110, 215), (165, 205), (170, 160), (130, 135), (90, 165)],
    "7": [(70, 55), (140, 55), (205, 55), (170, 140), (140, 220)],
    "8": [(130 + 45 * math.sin(a / 24 * 4 * math.pi), 130 - 85 * math.cos(a / 24 * 2 * math.pi)) for a in range(25)],
    "9": [(175, 80), (150, 45), (100, 55), (90, 95), (120, 120), (175, 95), (170, 220)],
}

# Times the page reads in the browser: input events, every websocket message, and when a card shows a value.
TIMING_JS = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  window.__ws = [];
  window.__input = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', e => window.__ws.push(['recv', now(), e.data.byteLength ?? e.data.size ?? 0]));
    }
    send(data) {
      window.__ws.push(['send', now(), data.byteLength ?? data.size ?? data.length ?? 0]);
      return super.send(data);
    }
  };
  for (const type of ['mouseup', 'pointerup', 'touchend', 'click'])
    window.addEventListener(type, () => window.__input.push([type, now()]), true);
  window.__cardValue = (label) => {
    for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
      if (!m.innerText.includes(label)) continue;
      const v = m.querySelector('[data-testid="stMetricValue"]');
      if (v && v.innerText.trim()) return v.innerText.trim();
    }
    return null;
  };
  // Resolves with [time the card's value entered the DOM, time of the next frame, value].
  window.__waitCard = (label) => new Promise(resolve => {
    const seen = () => {
      const v = window.__cardValue(label);
      if (!v) return false;
      const t = now();
      requestAnimationFrame(() => resolve([t, now(), v]));
      return true;
    };
    if (seen()) return;
    const obs = new MutationObserver(() => { if (seen()) obs.disconnect(); });
    obs.observe(document.body, {subtree: true, childList: true, characterData: true});
  });
})();
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# [start, end] (epoch ms) of each upload of a recording since s.
UPLOADS_JS = """s => performance.getEntriesByType('resource')
  .filter(e => e.name.includes('upload_file') && performance.timeOrigin + e.startTime >= s)
  .map(e => [performance.timeOrigin + e.startTime, performance.timeOrigin + e.responseEnd])"""


def spoken_clips(data_root: Path, n: int, tmp: Path) -> list[tuple[Path, str, float]]:
    """n FSDD test clips (different digits and speakers) at 16 kHz with silence around them: (wav, digit, seconds)."""
    speakers = ["jackson", "theo", "george", "nicolas", "lucas", "yweweler"]
    out = []
    for i in range(n):
        digit, speaker, take = i % 10, speakers[i % len(speakers)], i % 5
        src = data_root / "fsdd" / "recordings" / f"{digit}_{speaker}_{take}.wav"
        wav = tmp / f"mic_{i}_{src.name}"
        subprocess.run(
            ["sox", str(src), "-r", "16000", "-b", "16", "-c", "1", str(wav), "pad", "0.3", "0.5"], check=True
        )
        seconds = float(subprocess.run(["soxi", "-D", str(wav)], capture_output=True, text=True, check=True).stdout)
        out.append((wav, str(digit), seconds))
    return out


def launch(p, wav: Path | None):
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
    ]
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
    return p.chromium.launch(executable_path=CHROMIUM, args=args)


def open_page(browser, url: str, **context):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, permissions=["microphone"], **context)
    ctx.add_init_script(TIMING_JS)
    page = ctx.new_page()
    page.goto(url, timeout=120_000)
    page.get_by_text("Draw a digit or record one").wait_for(timeout=180_000)
    page.locator('[data-testid="stSidebar"]').get_by_text("Loaded: ").wait_for(timeout=120_000)
    page.wait_for_timeout(1000)  # let the first runs settle
    log("page ready")
    return page


def card_gone(page, label: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while page.evaluate("l => window.__cardValue(l)", label) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {label} card did not go away")
        page.wait_for_timeout(50)


def settle(page, quiet_ms: int = 600, timeout_s: float = 30) -> None:
    """Wait until the websocket has been quiet for quiet_ms: the runs an action started are over."""
    deadline = time.monotonic() + timeout_s
    count = page.evaluate("window.__ws.length")
    while time.monotonic() < deadline:
        page.wait_for_timeout(quiet_ms)
        now = page.evaluate("window.__ws.length")
        if now == count:
            return
        count = now


def clear_canvas(page) -> None:
    """The page's Clear button when it has one, else the canvas toolbar's reset (shown on hover)."""
    clear = page.locator('[data-testid="stMain"] button', has_text="Clear drawing")
    if clear.count():
        clear.first.click()
    else:
        page.locator(".upper-canvas").first.hover()
        page.locator('button[aria-label="Reset canvas & history"]').first.click()


def draw(page, points: list[tuple[float, float]]) -> None:
    canvas = page.locator('canvas[aria-label^="Drawing area"], .upper-canvas').first  # the pad; fabric.js before it
    box = canvas.bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0], y0 + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x0 + x, y0 + y, steps=6)
    page.mouse.up()


def breakdown(
    page, start: float, shown: tuple, marks: list[dict], card_mark: str, since: int, upload: list[float] | None = None
) -> dict:
    """Split start (input event, epoch ms) .. shown (card in DOM, next frame) into stages, in ms. With an upload
    ([start, end]), the rerun is the first message sent after it (before it, the recorder asks for its URL)."""
    ws = page.evaluate("i => window.__ws.slice(i)", since)
    dom, frame, _ = shown
    sent = next((t for kind, t, _ in ws if kind == "send" and t >= (upload[1] if upload else start)), None)
    ms = [dict(m, t=m["t"] * 1000) for m in marks]
    run = next((m["t"] for m in ms if m["mark"] == "run start" and sent is not None and m["t"] >= sent), None)
    after = [m for m in ms if run is not None and m["t"] >= run]
    at = {}
    for m in after:
        at.setdefault(m["mark"], m["t"])
    card = at.get(card_mark)
    arrived = max((t for kind, t, _ in ws if kind == "recv" and t <= dom), default=None)
    stages = {"total": frame - start}
    if sent is not None and run is not None and card is not None and arrived is not None:
        if upload:
            stages.update({"recorder": upload[0] - start, "upload": upload[1] - upload[0]})
        stages.update(
            {
                "browser→socket": sent - (upload[1] if upload else start),
                "socket→script": run - sent,
                "script before predict": at.get("predict start", card) - run,
                "predict": at.get("predict end", card) - at.get("predict start", card),
                "cards": card - at.get("predict end", card),
                "sending": max(0.0, arrived - card),
                "rendering": frame - max(arrived, card),
            }
        )
    return stages


def read_marks(path: Path, offset: int) -> tuple[list[dict], int]:
    if not path.exists():
        return [], offset
    with open(path, encoding="utf-8") as f:
        f.seek(offset)
        text = f.read()
        return [json.loads(line) for line in text.splitlines() if line.strip()], f.tell()


def measure_drawings(page, n: int, profile: Path) -> list[dict]:
    results, offset = [], read_marks(profile, 0)[1]
    names = list(STROKES)
    for i in range(n):
        clear_canvas(page)
        card_gone(page, "Image prediction")
        settle(page)  # a stroke before the cleared canvas came back from the server would be wiped by it
        offset = read_marks(profile, offset)[1]
        since = page.evaluate("window.__ws.length")
        page.evaluate("() => { window.__pending = window.__waitCard('Image prediction'); }")
        inputs = page.evaluate("window.__input.length")
        draw(page, STROKES[names[i % len(names)]])
        shown = page.evaluate("window.__pending")
        up = [
            t
            for kind, t in page.evaluate("i => window.__input.slice(i)", inputs)
            if kind in ("mouseup", "pointerup", "touchend")
        ]
        page.wait_for_timeout(400)  # the rest of the run's marks
        marks, offset = read_marks(profile, offset)
        r = breakdown(page, up[-1], shown, marks, "image card", since)
        r.update(drawn=names[i % len(names)], shown=shown[2])
        log(f"drawing {i + 1}: {r['total']:.0f} ms")
        results.append(r)
    return results


def measure_recordings(page, n: int, seconds: float, digit: str, profile: Path) -> list[dict]:
    results, offset = [], read_marks(profile, 0)[1]
    widget = page.locator('[data-testid="stAudioInput"]').first  # the page's recorder, not "Teach it your voice"
    for _ in range(n):
        if page.evaluate("window.__cardValue('Audio prediction')") is not None:
            widget.hover()
            widget.locator('button[aria-label^="Clear recording"]').click()
            card_gone(page, "Audio prediction")
        settle(page)
        offset = read_marks(profile, offset)[1]
        since = page.evaluate("window.__ws.length")
        widget.locator('button[aria-label="Record"]').click()
        page.wait_for_timeout(int((seconds + 0.3) * 1000))  # at least as long as the clip
        page.evaluate("() => { window.__pending = window.__waitCard('Audio prediction'); }")
        inputs = page.evaluate("window.__input.length")
        widget.locator('button[aria-label="Stop recording"]').click()
        shown = page.evaluate("window.__pending")
        stop = next(t for kind, t in page.evaluate("i => window.__input.slice(i)", inputs) if kind == "click")
        page.wait_for_timeout(400)
        marks, offset = read_marks(profile, offset)
        uploads = page.evaluate(UPLOADS_JS, stop)
        r = breakdown(page, stop, shown, marks, "audio card", since, uploads[-1] if uploads else None)
        r.update(said=digit, shown=shown[2])
        log(f"recording: {r['total']:.0f} ms")
        results.append(r)
    return results


def summary(rows: list[dict]) -> dict:
    out = {}
    for key in rows[0]:
        values = sorted(r[key] for r in rows if isinstance(r.get(key), float))
        if values:
            p95 = values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]
            out[key] = {"median": statistics.median(values), "p95": p95}
    return out


def print_table(title: str, rows: list[dict]) -> None:
    s = summary(rows)
    print(f"\n{title} ({len(rows)} trials)")
    print(f"  {'stage':24s} {'median ms':>10s} {'p95 ms':>10s}")
    for key, v in s.items():
        print(f"  {key:24s} {v['median']:10.0f} {v['p95']:10.0f}")
    wrong = [r for r in rows if r.get("shown") not in (r.get("drawn"), r.get("said"))]
    print(f"  card value differs from the digit drawn/said in {len(wrong)} of {len(rows)} (informational)")


SESSION = "bench-latency"  # the session token the training is started with, so this script may cancel it


def core_call(code: str, nice: bool = False) -> str:
    """Run a few lines against core in a fresh interpreter (this script stays free of torch), return its output."""
    env = {**os.environ, "DIGITS_THREADS": os.environ.get("DIGITS_THREADS", "1")}
    prefix = "import os; os.nice(10)\n" if nice else ""
    out = subprocess.run(
        [sys.executable, "-c", prefix + code], cwd=REPO, capture_output=True, text=True, env=env, check=False
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return out.stdout.strip()


def start_training(runs_dir: Path, data_dir: str) -> str:
    """A training with the sidebar form's settings but more epochs (so it outlasts the measurement), at nice 10 and
    $DIGITS_THREADS (default 1) threads: the machine is shared."""
    return core_call(
        "from core.runs.store import TrainRequest, start_training\n"
        f"print(start_training(TrainRequest(epochs=20), runs_root={str(runs_dir)!r}, "
        f"data_dir={data_dir!r}, session={SESSION!r}))",
        nice=True,
    ).splitlines()[-1]


def training_running(runs_dir: Path) -> bool:
    code = f"from core.runs.listing import active_training\nprint(bool(active_training({str(runs_dir)!r})))"
    return core_call(code) == "True"


def stop_training(run_id: str, runs_dir: Path) -> None:
    core_call(f"from core.runs.store import cancel\ncancel({run_id!r}, {str(runs_dir)!r}, session={SESSION!r})")


def measure(url: str, args, profile: Path, tmp: Path, data_root: Path) -> dict:
    from playwright.sync_api import sync_playwright

    clips = spoken_clips(data_root, math.ceil(args.recordings / args.per_clip), tmp)
    out = {}
    with sync_playwright() as p:
        browser = launch(p, None)
        try:
            out["drawings"] = measure_drawings(open_page(browser, url), args.drawings, profile)
        finally:
            browser.close()
        rows, left = [], args.recordings
        for wav, digit, seconds in clips:
            browser = launch(p, wav)
            try:
                rows += measure_recordings(open_page(browser, url), min(left, args.per_clip), seconds, digit, profile)
            finally:
                browser.close()
            left -= args.per_clip
        out["recordings"] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--drawings", type=int, default=20)
    ap.add_argument("--recordings", type=int, default=20)
    ap.add_argument("--per-clip", type=int, default=4, help="recordings per fake-microphone clip (one browser each)")
    ap.add_argument("--during-training", action="store_true", help="measure again while a training runs")
    ap.add_argument("--weights", default=str(REPO / "weights" / "default.pt"))
    ap.add_argument("--json", help="write every trial's stages here")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists() or not shutil.which("sox"):
        sys.exit("needs /usr/bin/chromium and sox")
    data_root = Path(os.environ.get("DIGITS_DATA_DIR", REPO / "data")).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="bench_latency_"))
    profile, runs_dir = tmp / "profile.jsonl", tmp / "runs"
    env = {
        "DIGITS_WEIGHTS": args.weights,
        "DIGITS_DATA_DIR": str(data_root),
        "DIGITS_RUNS_DIR": str(runs_dir),
        "DIGITS_PROFILE": str(profile),  # and the OpenMP policy scripts/app sets:
        "DIGITS_TRAINING_OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", ""),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY") or "PASSIVE",
    }
    print(f"CPU: {cpu_model()}; load before: {os.getloadavg()}")
    results = {}
    with streamlit_server(env) as url:
        results["idle"] = measure(url, args, profile, tmp, data_root)
        print_table("idle: last mouse-up → Image prediction card", results["idle"]["drawings"])
        print_table("idle: stop → Audio prediction card", results["idle"]["recordings"])
        print(f"load after idle: {os.getloadavg()}")
        if args.during_training:
            run_id = start_training(runs_dir, str(data_root))
            try:
                time.sleep(5)
                results["training"] = measure(url, args, profile, tmp, data_root)
                if not training_running(runs_dir):
                    print(f"warning: training {run_id} ended before the measurement did")
            finally:
                stop_training(run_id, runs_dir)
            print_table("during training: last mouse-up → Image prediction card", results["training"]["drawings"])
            print_table("during training: stop → Audio prediction card", results["training"]["recordings"])
            print(f"load after training: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


if __name__ == "__main__":
    main()
