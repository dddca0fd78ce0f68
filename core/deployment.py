"""The deployment setting: whether visitors may train and how often, who may cancel, and what runs/ keeps.

Read from the [digits] table of .streamlit/digits.toml (or the file $DIGITS_CONFIG names), then from environment
variables, which win. Streamlit's own config.toml warns about sections it does not know, hence a file of our own."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from core import limits, paths
from core.errors import DigitsError

CONFIG_ENV = "DIGITS_CONFIG"
DEFAULT_FILE = paths.REPO_ROOT / ".streamlit" / "digits.toml"
UNLIMITED = ("unlimited", "none", "")


class DeploymentError(DigitsError, ValueError):
    """A deployment setting that cannot be read or is out of range; training stays off until it is fixed."""


@dataclass(frozen=True)
class Deployment:
    """What this server allows; the defaults suit one person on their own computer."""

    training: bool = True  # the sidebar's retrain form
    trainings_per_hour: int | None = None  # None: no limit
    cancel_any_run: bool = False  # False: a visitor cancels only the runs their own browser session started
    keep_runs: int = limits.KEEP_RUNS  # runs/ keeps at most this many runs ...
    keep_runs_mb: int = limits.KEEP_RUNS_MB  # ... using at most this many MB

    @property
    def keep_bytes(self) -> int:
        return self.keep_runs_mb * limits.MB


ENV = {f.name: "DIGITS_" + f.name.upper() for f in fields(Deployment)}  # DIGITS_TRAINING, DIGITS_KEEP_RUNS ...
MINIMUM = {"trainings_per_hour": 0, "keep_runs": 1, "keep_runs_mb": 1}


def _from_env(name: str, text: str):
    where = f"${ENV[name]}={text!r}"
    text = text.strip().lower()
    if name in ("training", "cancel_any_run"):
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise DeploymentError(f"{where}: use true or false")
    if name == "trainings_per_hour" and text in UNLIMITED:
        return None
    try:
        return int(text)
    except ValueError:
        raise DeploymentError(f"{where}: use a whole number") from None


def _check(name: str, value, where: str):
    if name in ("training", "cancel_any_run"):
        if not isinstance(value, bool):
            raise DeploymentError(f"{where}: {name} must be true or false, not {value!r}")
        return value
    if name == "trainings_per_hour" and (value is None or (isinstance(value, str) and value.lower() in UNLIMITED)):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < MINIMUM[name]:
        raise DeploymentError(f"{where}: {name} must be a whole number of at least {MINIMUM[name]}, not {value!r}")
    return value


def _read_file(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f).get("digits", {})
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DeploymentError(f"{path} cannot be read: {exc}") from None
    if not isinstance(table, dict):
        raise DeploymentError(f"{path}: [digits] must be a table")
    unknown = sorted(set(table) - set(ENV))
    if unknown:
        raise DeploymentError(f"{path}: unknown setting {unknown[0]!r} in [digits] (known: {', '.join(ENV)})")
    return {k: _check(k, v, str(path)) for k, v in table.items()}


def load(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Deployment:
    """The setting in force: defaults, then the TOML file, then environment variables."""
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get(CONFIG_ENV) or DEFAULT_FILE)
    values = _read_file(path)
    for name, var in ENV.items():
        if var in environ:
            values[name] = _check(name, _from_env(name, environ[var]), f"${var}")
    return Deployment(**values)
