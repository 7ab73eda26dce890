"""Arrows one way: no import cycle between edgernn's parts, lazy imports (inside functions) included.

Every module's imports are read with ``ast`` (not by importing it), so an import hidden in a function counts as
much as one at the top. Two graphs: edgernn's packages (cli, data, training, export, verification, runtime,
stream, firmware, bench) each one node beside the few root modules, and the modules inside ``edgernn/runtime``.
The layout itself is held here too: at most four modules at the root, no two modules sharing a basename. ``if TYPE_CHECKING:`` imports are left
out: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "edgernn"
PACKAGES = tuple(f"edgernn.{path.parent.name}" for path in sorted(ROOT.glob("*/__init__.py")))


def module_names() -> dict[str, Path]:
    """Every module of edgernn by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _runs(node: ast.AST) -> bool:
    """False for ``if TYPE_CHECKING:`` blocks."""
    return not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))


def _walk(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        if _runs(child):
            yield child
            yield from _walk(child)


def imports_of(name: str, path: Path, modules) -> set[str]:
    """The edgernn modules ``name`` imports anywhere in its file (``from a import b``: ``a.b`` if a module), and
    those it names in a string of their exact dotted name (imported by ``importlib`` from a table)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value and node.value in modules:
            found.add(node.value)  # a module imported by its name (importlib.import_module, a table's row)
    return {target for target in found if target in modules and target != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _graph(node_of) -> dict[str, set[str]]:
    """Edges between the nodes ``node_of`` gives (None: leave the module out), self-loops dropped."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        source = node_of(name)
        if source is None:
            continue
        for target in imports_of(name, path, modules):
            node = node_of(target)
            if node is not None and node != source:
                graph.setdefault(source, set()).add(node)
    return graph


def package_node(name: str) -> str:
    return next((package for package in PACKAGES if name == package or name.startswith(package + ".")), name)


def runtime_node(name: str) -> str | None:
    return name if name.startswith("edgernn.runtime.") else None


def test_the_reader_sees_lazy_imports():
    """The graph is worth something only if imports inside functions are in it (a check that can fail)."""
    modules = module_names()
    assert "edgernn.runtime.intervals" in imports_of("edgernn.runtime.predictor",
                                                     modules["edgernn.runtime.predictor"], modules)
    assert "edgernn.runtime.bundle" in imports_of("edgernn.runtime.predictor",
                                                  modules["edgernn.runtime.predictor"], modules)
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert "edgernn.runtime.backends.c" in imports_of("edgernn.runtime.backends",
                                                      modules["edgernn.runtime.backends"], modules)  # by name


def test_no_cycle_between_edgernn_packages_and_modules():
    cycle = _cycle(_graph(package_node))
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_no_cycle_between_runtime_modules():
    cycle = _cycle(_graph(runtime_node))
    assert cycle is None, f"import cycle inside edgernn/runtime: {' -> '.join(cycle)}"


def test_no_cycle_between_any_two_modules():
    """Module by module across every package: a package's ``__init__`` counts as one module."""
    cycle = _cycle(_graph(lambda name: name))
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_device_side_never_imports_the_host_side():
    """runtime/ and stream/ import only each other, the standard library and the error classes."""
    graph = _graph(package_node)
    for source in ("edgernn.runtime", "edgernn.stream"):
        outside = graph.get(source, set()) - {"edgernn.runtime", "edgernn.stream", "edgernn.errors"}
        assert not outside, f"{source} imports {', '.join(sorted(outside))}"


def test_export_never_imports_verify():
    """The library's edgernn.export(verify=True) composes the two above both (the package root's function)."""
    graph = _graph(package_node)
    assert "edgernn.verification" not in graph.get("edgernn.exporting", set())
    assert "edgernn.exporting" in graph.get("edgernn.verification", set())  # the arrow this test holds one way


def test_the_root_keeps_four_modules_at_most():
    """Every part lives in a package named for what it holds; the root keeps the API, __main__, errors, version."""
    loose = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(loose) <= 4, f"modules at the package root: {loose}"


def test_no_two_modules_share_a_basename():
    """A reader never confuses export's bundle writer with the runtime's bundle reader: one name, one module."""
    seen: dict[str, list[str]] = {}
    for path in ROOT.rglob("*.py"):
        if path.name != "__init__.py":
            seen.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    for package in ROOT.glob("*/__init__.py"):  # a package's name is taken too (edgernn/data/ beside a data.py)
        seen.setdefault(package.parent.name, []).append(str(package.parent.relative_to(ROOT)) + "/")
    shared = {name: where for name, where in seen.items() if len(where) > 1}
    assert not shared, f"basenames used twice: {shared}"


def test_the_export_function_and_the_exporting_package_are_two_names():
    """``edgernn.export(...)`` is the API's function; the package holding the exporters has its own name, so an
    attribute chain reaches its modules (``import edgernn.exporting.compat as compat``)."""
    import edgernn
    import edgernn.exporting.compat as compat

    assert callable(edgernn.export) and compat.__name__ == "edgernn.exporting.compat"
    assert not (ROOT / "export").exists()
