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


# --------------------------------------------------------------------------- one owner per table

# Which engine modules may write SQL naming each table (docs/architecture.md, "Who owns which
# table"). Everyone else asks the owner's functions. The exceptions are named with their reason.
TABLE_OWNERS = {
    "sessions": {"engine/asr/sessions.py",
                 "engine/store/offline.py"},      # the offline store's list of sessions not yet sent
    "segments": {"engine/asr/sessions.py"},
    "records": {"engine/records/workflow.py"},
    "record_versions": {"engine/records/workflow.py"},
    "users": {"engine/users.py"},
    "audit_log": {"engine/audit.py"},
    "jobs": {"engine/manuals/index.py"},
    "manual_docs": {"engine/manuals/index.py", "engine/manuals/search.py"},   # the index: written / read
    "manual_chunks": {"engine/manuals/index.py", "engine/manuals/search.py"},
    "manual_fts": {"engine/manuals/index.py", "engine/manuals/search.py"},
    "manual_tri": {"engine/manuals/index.py", "engine/manuals/search.py"},
    "manual_ocr_pages": {"engine/manuals/ocrpages.py"},   # the OCR text layer (page cache)
    "mirrors": {"engine/mirrors/ledger.py"},
    "mirror_inspections": {"engine/mirrors/ledger.py"},
    "mirror_grade_changes": {"engine/mirrors/ledger.py"},
    "settings": {"engine/store/sqlite.py",
                 "engine/office/admin.py"},       # moving a whole database to the office server
}


def _tables() -> set[str]:
    import re
    out = set()
    for sql in (ENGINE / "migrations").glob("*.sql"):
        out |= set(re.findall(r"CREATE (?:VIRTUAL )?TABLE (?:IF NOT EXISTS )?(\w+)", sql.read_text(encoding="utf-8")))
    return out


def sql_writers() -> dict[str, set[str]]:
    """{table: engine files whose string literals hold SQL naming it (FROM/INTO/UPDATE/JOIN …) or
    that call ``insert("table", …)``}."""
    import re
    tables = _tables()
    pat = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+(\w+)", re.I)
    out: dict[str, set[str]] = {t: set() for t in tables}
    for p in ENGINE.rglob("*.py"):
        rel = str(p.relative_to(ENGINE.parent))
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [m for m in pat.findall(node.value) if m in tables]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "insert"
                  and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in tables):
                names = [node.args[0].value]
            for t in names:
                out[t].add(rel)
    return out


def test_every_table_has_an_owner():
    assert _tables() - set(TABLE_OWNERS) == set(), "a new table needs an owner in TABLE_OWNERS"


def test_only_a_tables_owner_writes_sql_against_it():
    strangers = {t: sorted(files - TABLE_OWNERS.get(t, set())) for t, files in sql_writers().items()}
    strangers = {t: f for t, f in strangers.items() if f}
    assert strangers == {}, f"SQL against a table outside its owner module: {strangers}"


def test_the_ownership_check_sees_sql():
    # the scan itself works: the owners are found writing SQL against their tables
    found = sql_writers()
    assert "engine/asr/sessions.py" in found["segments"]
    assert "engine/records/workflow.py" in found["record_versions"]
    assert "engine/mirrors/ledger.py" in found["mirror_inspections"]


def test_no_engine_file_over_600_lines():
    # one concept per module: a file that grows past this holds two (split it by concept)
    long = {str(p.relative_to(ENGINE.parent)): n for p in ENGINE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}, f"engine files over 600 lines: {long}"
