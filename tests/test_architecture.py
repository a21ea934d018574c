"""The package's shape, checked from its source: no import cycles (lazy imports and
``TYPE_CHECKING`` blocks included), absolute imports only, the simulation sandbox kept
apart, small modules, thin package ``__init__`` files, a flat top level, configuration
read in settings.py only, and nothing heavy imported when Airflow parses the DAGs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "plugins" / "childindex"
DAGS = REPO / "dags"
ROOT = "childindex"

STAGES = {
    "contracts",
    "organisations",  # the registry: who sends which contract, from which area (read by every stage)
    "intake",
    "validation",
    "staging",
    "keys",
    "linkage",
    "index",
    "notices",  # who must be told what tonight (issue 17, in progress)
    "retention",
    "reports",
    "orchestration",
    "cli",
    "simulation",
}
TOP_LEVEL_MODULES = {
    "__init__.py",
    "settings.py",
    "errors.py",
    "whitelist.py",
    "receipts.py",
    "safe_paths.py",
    "locks.py",
    "keyfiles.py",  # below settings and keys/, which both read key files (settings imports no stage)
}
MAX_LINES = 600
HEAVY = ("great_expectations", "splink", "pandas", "duckdb", "matplotlib", "fastapi")


# ---------------------------------------------------------------------------------------
# The package's modules and their imports


def module_name(path: Path, base: Path = PKG) -> str:
    parts = [ROOT, *path.relative_to(base).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def package_modules() -> dict[str, Path]:
    """Every module under plugins/childindex by dotted name (a package by its ``__init__``)."""
    return {module_name(p): p for p in sorted(PKG.rglob("*.py")) if "__pycache__" not in p.parts}


@cache
def packages() -> frozenset[str]:
    return frozenset(name for name, path in package_modules().items() if path.name == "__init__.py")


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _from_base(node: ast.ImportFrom, importer: str, importer_is_package: bool) -> str:
    """The absolute module a ``from ... import`` reads from (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    package = importer if importer_is_package else importer.rpartition(".")[0]
    parts = package.split(".")
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def import_targets(
    tree: ast.AST, importer: str, importer_is_package: bool, modules: Iterable[str]
) -> Iterator[tuple[int, str]]:
    """(line, module) for every import anywhere in ``tree``: module level, in functions,
    in ``if TYPE_CHECKING:`` blocks. ``import a.b.c`` is a.b.c; ``from p import name`` is
    p.name when that is a module in ``modules``, else p."""
    known = set(modules)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, importer, importer_is_package)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in known else base


def _existing(name: str, modules: Iterable[str]) -> str | None:
    """``name`` or its longest prefix that is a module of the tree."""
    known = set(modules)
    parts = name.split(".")
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts.pop()
    return None


def edge_lines(
    importer: str, source: str, modules: Iterable[str], pkgs: Iterable[str], importer_is_package: bool = False
) -> dict[str, int]:
    """The childindex modules ``importer`` depends on, each with the first line that makes
    it so: each import's target, and every package on the target's path (its ``__init__``
    runs first) that is neither the root nor an ancestor of the importer (already running
    when the importer runs)."""
    modules, pkgs = set(modules), set(pkgs)
    out: dict[str, int] = {}
    for line, raw in import_targets(ast.parse(source), importer, importer_is_package, modules):
        if raw != ROOT and not raw.startswith(ROOT + "."):
            continue
        target = _existing(raw, modules)
        if target is None:
            continue
        out[target] = min(line, out.get(target, line))
        parts = target.split(".")
        for i in range(2, len(parts) + 1):
            package = ".".join(parts[:i])
            if package in pkgs and importer != package and not importer.startswith(package + "."):
                out[package] = min(line, out.get(package, line))
    out.pop(importer, None)
    return out


def edges_for(
    importer: str, source: str, modules: Iterable[str], pkgs: Iterable[str], importer_is_package: bool = False
) -> set[str]:
    return set(edge_lines(importer, source, modules, pkgs, importer_is_package))


@cache
def import_lines() -> dict[str, dict[str, int]]:
    modules, pkgs = package_modules(), packages()
    return {
        name: edge_lines(name, path.read_text(encoding="utf-8"), modules, pkgs, path.name == "__init__.py")
        for name, path in modules.items()
    }


def import_graph() -> dict[str, set[str]]:
    return {name: set(targets) for name, targets in import_lines().items()}


# ---------------------------------------------------------------------------------------
# Cycles: strongly connected components (Tarjan), then a shortest cycle through each member


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, iter(sorted(graph.get(start, ())))))
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def _shortest_cycle(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    parent: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for succ in sorted(graph.get(node, ())):
            if succ not in within:
                continue
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if succ not in seen:
                seen.add(succ)
                parent[succ] = node
                queue.append(succ)
    return []


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Each cycle as ``a -> b -> a``: for every component of more than one module (or a
    module importing itself), the shortest cycle through each of its members."""
    cycles: list[str] = []
    for component in strongly_connected(graph):
        members = set(component)
        if len(component) == 1 and component[0] not in graph.get(component[0], set()):
            continue
        for node in component:
            cycle = _shortest_cycle(graph, node, members)
            if not cycle:
                continue
            body = cycle[:-1]
            first = body.index(min(body))
            body = body[first:] + body[:first]
            text = " -> ".join([*body, body[0]])
            if text not in cycles:
                cycles.append(text)
    return cycles


def test_cycle_finder_reports_a_hand_built_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == ["a -> b -> c -> a"]
    assert [c for c in strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"x": {"x"}}) == ["x -> x"]
    # Two cycles sharing a node are both named.
    assert find_cycles({"a": {"b", "c"}, "b": {"a"}, "c": {"a"}}) == ["a -> b -> a", "a -> c -> a"]


def test_import_edges_include_lazy_type_checking_imports_and_packages_on_the_path() -> None:
    modules = {
        "childindex",
        "childindex.settings",
        "childindex.x",
        "childindex.x.a",
        "childindex.x.b",
        "childindex.y",
        "childindex.y.c",
        "childindex.y.d",
    }
    pkgs = {"childindex", "childindex.x", "childindex.y"}
    source = (
        "from typing import TYPE_CHECKING\n"
        "import json\n"
        "from childindex.x.b import thing\n"
        "if TYPE_CHECKING:\n"
        "    import childindex.y.c\n"
        "def f():\n"
        "    from childindex import settings\n"
        "    from childindex.y import d, not_a_module\n"
    )
    assert edges_for("childindex.x.a", source, modules, pkgs) == {
        "childindex.x.b",  # not childindex.x: the importer's own package is already running
        "childindex.y.c",
        "childindex.y",
        "childindex.settings",
        "childindex.y.d",
    }
    # A package's __init__ re-exporting its own module: no edge to itself.
    assert edges_for("childindex.x", "from childindex.x.a import A\n", modules, pkgs, True) == {"childindex.x.a"}


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the walk found the package's modules"
    cycles = find_cycles(graph)
    lines, modules = import_lines(), package_modules()
    where = [
        "\n".join(
            [cycle]
            + [
                f"    {a} -> {b}: {rel(modules[a])}:{lines[a][b]}"
                for a, b in zip(cycle.split(" -> "), cycle.split(" -> ")[1:], strict=False)
            ]
        )
        for cycle in cycles
    ]
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(where)


# ---------------------------------------------------------------------------------------
# Import rules


def test_no_relative_imports() -> None:
    offences = [
        f"{rel(path)}:{node.lineno}: from {'.' * node.level}{node.module or ''} import ..."
        for path in package_modules().values()
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert not offences, "relative imports (use absolute childindex. imports):\n" + "\n".join(offences)


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_only_the_cli_imports_the_simulation_sandbox() -> None:
    modules = package_modules()
    # The synthetic England (areas, organisations, moves) is sandbox too, however it grows.
    assert "childindex.simulation.england" in modules and "childindex.simulation.synthetic" in modules
    offences = [
        f"{rel(path)}:{line}: imports {target}"
        for name, path in modules.items()
        if not (_in(name, "childindex.simulation") or _in(name, "childindex.cli"))
        for line, target in import_targets(parsed(path), name, path.name == "__init__.py", modules)
        if _in(target, "childindex.simulation")
    ]
    assert not offences, "outside childindex.simulation and childindex.cli:\n" + "\n".join(offences)


def _dag_imports() -> list[tuple[Path, int, str]]:
    modules = package_modules()
    found = []
    for path in sorted(DAGS.glob("*.py")):
        tree = parsed(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                found.append((path, node.lineno, "." * node.level + (node.module or "")))
            elif isinstance(node, ast.ImportFrom) and not _in(node.module or "", ROOT):
                # A non-childindex name may be a module or an attribute: keep the fuller name.
                found.extend((path, node.lineno, f"{node.module}.{a.name}") for a in node.names)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                found.extend(
                    (path, line, target)
                    for line, target in import_targets(ast.Module(body=[node], type_ignores=[]), "dags", False, modules)
                )
    return found


def test_dag_files_import_only_airflow_sdk_the_standard_library_and_orchestration() -> None:
    """DAG files only wire: their shape depends on no contract and no registry (one intake DAG
    maps over whatever files tonight holds), so they import no stage but orchestration."""
    imports = _dag_imports()
    assert len({path for path, _, _ in imports}) == len(list(DAGS.glob("*.py"))) >= 5
    stdlib = sys.stdlib_module_names
    offences = [
        f"{rel(path)}:{line}: imports {target}"
        for path, line, target in imports
        if not (
            _in(target, "airflow.sdk")
            or target.split(".")[0] in stdlib  # __future__ included
            or _in(target, "childindex.orchestration")
        )
    ]
    allowed = "airflow.sdk, the standard library and childindex.orchestration"
    assert not offences, f"DAG files may import {allowed} only:\n" + "\n".join(offences)
    stages = {".".join(t.split(".")[:2]) for _, _, t in imports if _in(t, ROOT)}
    assert stages == {"childindex.orchestration"}


def test_the_registry_rests_on_contracts_and_the_shared_modules_only() -> None:
    """Every stage reads the registry, so it imports no stage but contracts (to check each
    organisation's contract): it sits below them all, and the settings may load it lazily."""
    allowed = ("childindex.organisations", "childindex.contracts", "childindex.errors", "childindex.whitelist")
    registry = {name: targets for name, targets in import_lines().items() if _in(name, "childindex.organisations")}
    assert "childindex.organisations.registry" in registry
    modules = package_modules()
    offences = [
        f"{rel(modules[name])}:{line}: imports {target}"
        for name, targets in registry.items()
        for target, line in targets.items()
        if not any(_in(target, a) for a in allowed)
    ]
    assert not offences, "childindex.organisations imports a stage:\n" + "\n".join(offences)


# ---------------------------------------------------------------------------------------
# Shape


def test_no_module_is_longer_than_600_lines() -> None:
    too_long = {
        rel(path): n
        for path in package_modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def _init_offences(tree: ast.Module) -> list[tuple[int, str]]:
    offences = []
    for i, stmt in enumerate(tree.body):
        if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            if isinstance(stmt.value.value, str):
                continue
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            continue
        targets = (
            stmt.targets
            if isinstance(stmt, ast.Assign)
            else [stmt.target]
            if isinstance(stmt, ast.AnnAssign | ast.AugAssign)
            else []
        )
        if targets and all(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        offences.append((stmt.lineno, type(stmt).__name__))
    return offences


def test_init_checker_flags_definitions() -> None:
    source = '"""Doc."""\nfrom a import b\n__all__ = ["b"]\ndef f():\n    pass\nX = 1\n'
    assert _init_offences(ast.parse(source)) == [(4, "FunctionDef"), (6, "Assign")]


def test_package_inits_hold_only_a_docstring_imports_and_all() -> None:
    inits = [p for p in package_modules().values() if p.name == "__init__.py"]
    assert len(inits) >= len(STAGES)
    offences = [f"{rel(p)}:{line}: {kind}" for p in inits for line, kind in _init_offences(parsed(p))]
    assert not offences, "package __init__ files: docstring, imports and __all__ only:\n" + "\n".join(offences)


def test_top_level_holds_only_stage_folders_and_the_shared_modules() -> None:
    entries = {p.name: p.is_dir() for p in PKG.iterdir() if p.name != "__pycache__"}
    stray = sorted(
        f"{name}/" if is_dir else name
        for name, is_dir in entries.items()
        if not ((is_dir and name in STAGES) or (not is_dir and name in TOP_LEVEL_MODULES))
    )
    assert not stray, f"not a stage folder or an allowed top-level module: {stray}"
    assert {n for n, d in entries.items() if d} <= STAGES


# ---------------------------------------------------------------------------------------
# Configuration from the environment: settings.py only

_ENV_READERS = {"environ", "environb", "getenv", "getenvb"}
_ENV_WRITERS = {"putenv", "unsetenv"}
_MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def env_offences(source: str, may_read: bool = False, may_copy: bool = False) -> list[tuple[int, str]]:
    """(line, what) for each use of the process environment in ``source``.

    Mutations are always offences. Reads are offences unless ``may_read``; with
    ``may_copy``, a copy of the whole environment (``{**os.environ, ...}``,
    ``dict(os.environ)``, ``os.environ.copy()``) is allowed."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    os_names, env_names, fn_names = set(), set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            for a in node.names:
                if a.name in ("environ", "environb"):
                    env_names.add(a.asname or a.name)
                elif a.name in _ENV_READERS | _ENV_WRITERS:
                    fn_names[a.asname or a.name] = a.name

    def is_environ(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in env_names
        return (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "environb")
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        )

    offences: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in os_names:
            if node.attr in _ENV_WRITERS:
                offences.append((node.lineno, f"mutation: os.{node.attr}"))
            elif node.attr in ("getenv", "getenvb") and not may_read:
                offences.append((node.lineno, f"read: os.{node.attr}"))
        elif isinstance(node, ast.Name) and node.id in fn_names and isinstance(node.ctx, ast.Load):
            kind = "mutation" if fn_names[node.id] in _ENV_WRITERS else "read"
            if kind == "mutation" or not may_read:
                offences.append((node.lineno, f"{kind}: {fn_names[node.id]}"))
        if not is_environ(node):
            continue
        parent = parents.get(node)
        grand = parents.get(parent) if parent is not None else None
        if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store | ast.Del):
            offences.append((node.lineno, "mutation: os.environ[...] = / del"))
        elif isinstance(parent, ast.Attribute) and parent.attr in _MUTATORS and isinstance(grand, ast.Call):
            offences.append((node.lineno, f"mutation: os.environ.{parent.attr}()"))
        elif may_read:
            continue
        elif may_copy and (
            (
                isinstance(parent, ast.Dict)
                and any(k is None and v is node for k, v in zip(parent.keys, parent.values, strict=True))
            )
            or (isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "dict")
            or (isinstance(parent, ast.Attribute) and parent.attr == "copy" and isinstance(grand, ast.Call))
        ):
            continue
        else:
            offences.append((node.lineno, "read: os.environ"))
    return sorted(offences)


def test_environment_checker() -> None:
    source = (
        "import os\n"
        "from os import getenv as g\n"
        "a = os.environ.get('X')\n"
        "b = os.getenv('Y')\n"
        "c = {**os.environ, 'Z': '1'}\n"
        "os.environ['W'] = '1'\n"
        "os.environ.update({'V': '2'})\n"
        "os.environ.setdefault('U', '3')\n"
        "os.putenv('T', '4')\n"
        "d = g('S')\n"
        "e = os.environ.copy()\n"
    )
    assert env_offences(source) == [
        (3, "read: os.environ"),
        (4, "read: os.getenv"),
        (5, "read: os.environ"),
        (6, "mutation: os.environ[...] = / del"),
        (7, "mutation: os.environ.update()"),
        (8, "mutation: os.environ.setdefault()"),
        (9, "mutation: os.putenv"),
        (10, "read: getenv"),
        (11, "read: os.environ"),
    ]
    assert env_offences(source, may_copy=True) == [
        (3, "read: os.environ"),
        (4, "read: os.getenv"),
        (6, "mutation: os.environ[...] = / del"),
        (7, "mutation: os.environ.update()"),
        (8, "mutation: os.environ.setdefault()"),
        (9, "mutation: os.putenv"),
        (10, "read: getenv"),
    ]
    assert env_offences(source, may_read=True) == [
        (6, "mutation: os.environ[...] = / del"),
        (7, "mutation: os.environ.update()"),
        (8, "mutation: os.environ.setdefault()"),
        (9, "mutation: os.putenv"),
    ]


def test_only_settings_reads_the_environment() -> None:
    offences = []
    for name, path in package_modules().items():
        found = env_offences(
            path.read_text(encoding="utf-8"),
            may_read=name == "childindex.settings",
            may_copy=name == "childindex.simulation.demo",
        )
        offences += [f"{rel(path)}:{line}: {what}" for line, what in found]
    assert not offences, "the environment outside settings.py:\n" + "\n".join(offences)


# ---------------------------------------------------------------------------------------
# Nothing heavy at DAG-parse time


def _import_in_fresh_python(modules: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(json.dumps(sorted({{h for h in {HEAVY!r} for n in sys.modules if n == h or n.startswith(h + '.')}})))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHILDINDEX_")}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")  # Airflow reads its configuration at import
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
