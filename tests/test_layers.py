"""Imports in src/poolwatch go one way: no circle between modules, no arrow from a floor up.

The floors, top to bottom (README, Layout):

    6  cli, __main__                      the entry point
    5  once/                              the `--once` feature
    4  runtime/                           the daemon: scheduling, plan, reload, metrics
    3  config.model, config.load          the registry and the loader (they know every plugin)
    2  sources/, sinks/, silences/        the plugins
    1  config.fields, .rules, .plugin,    what plugins import: the scalar types, rules, the
       .secrets, logs, statefiles,        plugin contract, the secret declaration, logging;
       sources/__init__, sinks/__init__   the Collector and Sink protocols and their errors
    0  core/ (and the package root)       pure: imports nothing of poolwatch outside core

An import may point at its own floor or any floor below it, never above. Every import counts,
wherever it stands: at module level, inside a function (a lazy import is still a dependency,
it only runs later), and under `if TYPE_CHECKING:` too. The last is a choice: a type-only
import does not run, but it is still an arrow a reader follows and a coupling a change has to
respect; an upward arrow or a circle hidden under TYPE_CHECKING is exactly the kind of coupling
the floors are there to forbid, so it is not excused.

An edge goes to the module named: `from poolwatch.config import fields` is an edge to
`poolwatch.config.fields` (a submodule), `from poolwatch.core.model import Reading` to
`poolwatch.core.model`. Parent packages are not counted as targets: their `__init__` files are
held to importing nothing that would matter (`test_package_inits_import_nothing_above`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
ROOT = SRC / "poolwatch"

FLOOR_NAMES = {
    6: "entry point (cli, __main__)",
    5: "once/",
    4: "runtime/",
    3: "registry + loader (config.model, config.load)",
    2: "plugins (sources/, sinks/, silences/)",
    1: "what plugins import (config.fields/rules/plugin/secrets, logs, statefiles)",
    0: "core/",
}


def floor_of(module: str) -> int:
    """The floor of a poolwatch module; an unknown module fails the test that lists them."""
    parts = module.split(".")
    assert parts[0] == "poolwatch", module
    rest = parts[1:]
    if not rest:
        return 0  # the package root: only its version
    head = rest[0]
    if head in ("cli", "__main__"):
        return 6
    if head == "once":
        return 5
    if head == "runtime":
        return 4
    if head == "config":
        if len(rest) == 1:
            return 1  # the package imports nothing (config/__init__.py)
        if rest[1] in ("model", "load"):
            return 3
        if rest[1] in ("fields", "rules", "plugin", "secrets"):
            return 1
    if head in ("sources", "sinks") and len(rest) == 1:
        return 1  # the plugin contracts (Collector, Planned, Sink, their errors), not a plugin
    if head in ("sources", "sinks", "silences"):
        return 2
    if head in ("logs", "statefiles"):
        return 1
    if head == "core":
        return 0
    raise LookupError(f"{module} has no floor: add it to tests/test_layers.py and the README")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_package(module: str, modules: dict[str, Path]) -> bool:
    return modules[module].name == "__init__.py"


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The longest known poolwatch module that `target` names (None: not ours)."""
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in modules:
            return name
        parts.pop()
    return None


def imports_of(module: str, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """Every poolwatch module `module` imports, with the line, at any depth of its AST."""
    tree = ast.parse(modules[module].read_text(), str(modules[module]))
    package = module if _is_package(module, modules) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            # `from pkg import name` is an edge to pkg.name when that is a module, else to pkg
            resolved = {_resolve(t, modules) for t in targets[:-1]}
            for name in sorted(r for r in resolved if r is not None):
                if name != module:
                    yield name, node.lineno
            continue
        for target in targets:
            name = _resolve(target, modules)
            if name is not None and name != module:
                yield name, node.lineno


def graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: the line of its import}."""
    modules = all_modules()
    return {module: dict(imports_of(module, modules)) for module in modules}


def _cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def test_every_module_has_a_floor() -> None:
    unknown = []
    for module in all_modules():
        try:
            floor_of(module)
        except LookupError as exc:
            unknown.append(str(exc))
    assert not unknown, "\n".join(unknown)


def test_no_import_circle() -> None:
    edges = graph()
    lines = []
    for component in _cycles(edges):
        members = set(component)
        lines.append("circle: " + ", ".join(component))
        for module in component:
            for target, line in sorted(edges[module].items()):
                if target in members:
                    lines.append(f"    {module}:{line} -> {target}")
    assert not lines, "import circles in src/poolwatch:\n" + "\n".join(lines)


def test_no_arrow_up_a_floor() -> None:
    edges = graph()
    lines = []
    for module, targets in sorted(edges.items()):
        for target, line in sorted(targets.items()):
            if floor_of(target) > floor_of(module):
                lines.append(
                    f"{module}:{line} -> {target}   "
                    f"({FLOOR_NAMES[floor_of(module)]} -> {FLOOR_NAMES[floor_of(target)]})"
                )
    assert not lines, "imports pointing up a floor:\n" + "\n".join(lines)


def test_core_imports_only_core() -> None:
    """Core is pure: it names no poolwatch module outside core."""
    edges = graph()
    bad = [
        f"{module}:{line} -> {target}"
        for module, targets in sorted(edges.items())
        if module.startswith("poolwatch.core")
        for target, line in sorted(targets.items())
        if not target.startswith("poolwatch.core")
    ]
    assert not bad, "core imports outside core:\n" + "\n".join(bad)


def test_package_inits_import_nothing_above() -> None:
    """An import of `a.b.c` runs `a/__init__` and `a/b/__init__`: those must stay at the
    floor of every module below them (they are not counted as edge targets)."""
    modules = all_modules()
    edges = graph()
    bad = []
    for module in modules:
        if not _is_package(module, modules) or module == "poolwatch":
            continue
        members = [m for m in modules if m.startswith(module + ".")]
        lowest = min((floor_of(m) for m in members), default=floor_of(module))
        for target, line in sorted(edges[module].items()):
            if floor_of(target) > lowest:
                bad.append(f"{module}:{line} -> {target}")
    assert not bad, "package __init__ imports above its lowest member:\n" + "\n".join(bad)


def test_the_walk_sees_what_it_must(tmp_path: Path) -> None:
    """The walk itself: function-level, TYPE_CHECKING and relative imports all count."""
    module = tmp_path / "x.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from poolwatch.runtime import daemon\n"
        "def f() -> None:\n"
        "    import poolwatch.cli\n"
        "from . import model\n"
        "from .model import Reading\n"
    )
    modules = {
        "poolwatch.core.x": module,
        "poolwatch.core.model": tmp_path / "model.py",
        "poolwatch.runtime": tmp_path / "__init__.py",
        "poolwatch.runtime.daemon": tmp_path / "daemon.py",
        "poolwatch.cli": tmp_path / "cli.py",
    }
    assert sorted(imports_of("poolwatch.core.x", modules)) == [
        ("poolwatch.cli", 5),
        ("poolwatch.core.model", 6),
        ("poolwatch.core.model", 7),
        ("poolwatch.runtime.daemon", 3),
    ]
    assert _cycles({"a": {"b": 1}, "b": {"a": 2}, "c": {"a": 3}}) == [["a", "b"]]
