"""The shape of core: no import cycles, command-line modules imported by no library module, no streamlit."""

from __future__ import annotations

import ast

import pytest

from tests.helpers import REPO

CLI = {
    "core.train",
    "core.sweep",
    "core.evaluate",
    "core.embeddings",
    "core.calibrate",
    "core.runs.__main__",
    "core.data.__main__",
}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted((REPO / "core").rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _imports(tree: ast.Module, modules: dict) -> set[str]:
    """Every core module tree imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


MODULES = _modules()
GRAPH = {m: {t for t in _imports(tree, MODULES) if t in MODULES and t != m} for m, tree in MODULES.items()}


def test_core_has_no_import_cycles():
    done, path = set(), []

    def visit(module):
        if module in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(module) :] + [module]))
        if module in done:
            return
        path.append(module)
        for target in sorted(GRAPH[module]):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


def test_command_line_modules_are_imported_by_no_library_module():
    assert set(MODULES) >= CLI, CLI - set(MODULES)
    importers = {cli: sorted(m for m, targets in GRAPH.items() if cli in targets) for cli in CLI}
    assert all(not v for v in importers.values()), importers


@pytest.mark.parametrize("module", sorted(MODULES))
def test_core_module_is_ui_free_and_says_what_it_is(module):
    tree = MODULES[module]
    assert not any(t.split(".")[0] == "streamlit" for t in _imports(tree, MODULES)), f"{module} imports streamlit"
    doc = ast.get_docstring(tree)
    assert doc and doc.strip(), f"{module} has no docstring"
