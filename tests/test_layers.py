"""The map of docs/design.md stays true: every import of the package follows the layers.

Data flows one way: the shared pieces -> the compiler -> the plan -> the back ends
(runtime, render, service, export, lsp) -> the command line. A back end depends on the plan
and on the state database's interface, never on another back end nor on the CLI; the compiler
depends on no back end. Lazy imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "alfred_dsl"

#: Modules every layer may use: sources and spans, diagnostics and their printer, values,
#: expressions, cron, shipped files, and the state database's interface.
SHARED = {
    "alfred_dsl._source", "alfred_dsl._diagnostics", "alfred_dsl._codes", "alfred_dsl._render_diag",
    "alfred_dsl._values", "alfred_dsl._expr", "alfred_dsl._cron", "alfred_dsl._resources",
    "alfred_dsl._statedb", "alfred_dsl._version", "alfred_dsl._gcpause", "alfred_dsl._colour",
    "alfred_dsl._make", "alfred_dsl._codecache", "alfred_dsl._fork",
}
#: The public face: the package root, the Python API and the builder, which chain the layers.
#: ``Engine`` is the service's face in the Python API (it takes what ``run`` takes: files and
#: workflows built in Python), so it and the package that exports it sit with the API.
API = {"alfred_dsl", "alfred_dsl._api", "alfred_dsl._builder", "alfred_dsl._callsite", "alfred_dsl._emit",
       "alfred_dsl.templates", "alfred_dsl.service._engine", "alfred_dsl.service"}
BACK_ENDS = ("runtime", "render", "service", "export", "lsp")

#: What each layer may import, besides itself and SHARED.
ALLOWED: dict[str, set[str]] = {
    "shared": set(),
    "compiler": set(),
    "runtime": {"compiler"},
    "render": {"compiler"},
    # The service runs workflows: it drives the runtime through its public package only.
    "service": {"compiler", "runtime-public"},
    # An exported task runs one attempt with the runtime's own executors (the command
    # contract is not written twice): docs/exports.md.
    "export": {"compiler", "runtime"},
    "lsp": {"compiler"},
    "cli": {"compiler", "api", *BACK_ENDS, "runtime-public"},
    "api": {"compiler", "runtime", "runtime-public", "service"},
}


def layer_of(module: str) -> str:
    if module == "alfred_dsl.__main__":  # `python -m alfred_dsl` is the command line
        return "cli"
    if module in SHARED:
        return "shared"
    if module in API:
        return "api"
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in (*BACK_ENDS, "cli", "compiler"):
        if parts[1] == "runtime" and len(parts) == 2:
            return "runtime-public"
        return parts[1]
    raise AssertionError(f"{module} belongs to no layer: add it to the map in docs/design.md and here")


def module_name(path: Path) -> str:
    relative = path.relative_to(REPO_ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every alfred_dsl module that ``path`` imports, with the line of the import."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("alfred_dsl")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("alfred_dsl"):
                continue
            if node.module is None or target in ("alfred_dsl", "alfred_dsl.compiler") or target.endswith(
                tuple(f".{b}" for b in BACK_ENDS)
            ):
                # `from . import _x` names modules: each is an import of its own.
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    is_module = (REPO_ROOT / Path(*candidate.split("."))).with_suffix(".py").is_file() or (
                        REPO_ROOT / Path(*candidate.split("."))
                    ).is_dir()
                    found.append((candidate if is_module else target, node.lineno))
            else:
                found.append((target, node.lineno))
    return found


def _top(module: str) -> str:
    """The module itself for a module file; its package for a name inside a package."""
    path = REPO_ROOT / Path(*module.split("."))
    while module.count(".") and not (path.with_suffix(".py").is_file() or path.is_dir()):
        module = module.rpartition(".")[0]
        path = path.parent
    return module


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_belongs_to_a_layer() -> None:
    for path in MODULES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    source = layer_of(module_name(path))
    source = "runtime" if source == "runtime-public" else source  # the package's own face
    wrong = []
    for target, line in imports_of(path):
        target_layer = layer_of(_top(target))
        if target_layer in (source, "shared") or (source, target_layer) == ("runtime", "runtime-public"):
            continue
        if target_layer == "runtime-public" and "runtime" in ALLOWED[source]:
            continue
        if target_layer not in ALLOWED[source]:
            wrong.append(f"{path.relative_to(REPO_ROOT)}:{line}: {source} imports {target} ({target_layer})")
    assert not wrong, "\n".join(wrong)


def test_the_rules_can_fail() -> None:
    """The checker itself: a render module importing the runtime is refused."""
    assert "runtime" not in ALLOWED["render"] and "cli" not in ALLOWED["runtime"]
    assert layer_of("alfred_dsl.runtime._scheduler") == "runtime"
    assert layer_of("alfred_dsl.render._report") == "render"
