"""The engine's import graph has no circle: every ``import`` inside ``engine/`` counts, at module
level and inside functions alike (a lazy import is still a dependency), and a circle fails this
test with the modules that form it."""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"


def _modules() -> dict[str, Path]:
    out = {}
    for p in ENGINE.rglob("*.py"):
        parts = ["engine", *p.relative_to(ENGINE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _owner(name: str, mods: dict[str, Path]) -> str | None:
    """The engine module an imported name lives in (``engine.store.Store`` → ``engine.store``)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base_name = ".".join(base + ([node.module] if node.module else []))
                else:
                    base_name = node.module or ""
                targets = [f"{base_name}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                owner = _owner(t, mods)
                if owner is not None and owner != mod:
                    deps.add(owner)
        graph[mod] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_engine():
    g = import_graph()
    assert "engine.context" in g["engine.cli_support"]           # module level
    assert "engine.office.link" in g["engine.context"]
    assert "engine.context" in g["engine.jobs"]                   # inside a function
    assert "engine.store" in g["engine.users"]                    # a name from a package
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_the_engine():
    g = import_graph()
    found = cycles(g)
    report = "\n".join(f"{' <-> '.join(c)}:\n" + "\n".join(f"    {m} imports {', '.join(sorted(g[m] & set(c)))}"
                                                             for m in c) for c in found)
    assert not found, f"import circles inside engine/:\n{report}"


def test_no_sql_in_the_desktop():
    """The desktop presents the engine: every read and write of the store is an engine function
    (no ``SELECT``/``INSERT``/``UPDATE``/``DELETE`` statement under ``desktop/``)."""
    import re
    sql = re.compile(r"\b(SELECT\s+\S|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b")
    found = [f"{p.relative_to(ENGINE.parent)}:{i}: {line.strip()}"
             for p in sorted((ENGINE.parent / "desktop").rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if sql.search(line)]
    assert not found, "SQL in desktop/:\n" + "\n".join(found)
