"""A module of the project as it was at a git revision, loaded beside today's (the benchmarks' baselines)."""

from __future__ import annotations

import subprocess
import sys
import types

from core import paths


def module_at(path: str, revision: str) -> types.ModuleType:
    """The file at path (e.g. core/features/audio.py) as it was at revision, loaded as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{revision}:{path}"],
        cwd=paths.REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType(f"{path.rsplit('/', 1)[-1].removesuffix('.py')}_at_{revision}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{revision}:{path}", "exec"), module.__dict__)
    return module
