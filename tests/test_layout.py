"""The house drawn from the imports: wings in one order, no circles, nothing importing up,
no module over 600 lines, at most 10 modules at the root, public names only across modules,
and Streamlit only in review/ui. A newcomer (or a change) that breaks one is told where."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import review

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "review"
MAX_LINES = 600
MAX_ROOT_MODULES = 10


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _wing(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in review.WINGS:
        return parts[1]
    return "__main__" if parts[-1] == "__main__" else "root"


def _rank(module: str) -> int:
    wing = _wing(module)
    if wing == "__main__":
        return len(review.WINGS) + 1          # the entry point sits above everything
    return 0 if wing == "root" else review.WINGS.index(wing) + 1


def _imports(module: str, path: Path) -> list[tuple[str, str]]:
    """(imported module, imported name or '') for every review import, lazy ones included."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.split(".")[0] == "review"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "review":
                continue
            for alias in node.names:
                if f"{source}.{alias.name}" in MODULES:
                    found.append((f"{source}.{alias.name}", ""))
                else:
                    found.append((source, alias.name))
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        graph[module] = {target for target, _ in _imports(module, path)
                         if target in MODULES and target != module
                         and not module.startswith(target + ".")}   # a module's own package
    return graph


def test_the_wings_are_the_subpackages_and_each_says_what_it_owns_and_may_import():
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert packages == sorted(review.WINGS)
    for wing in review.WINGS:
        doc = ast.get_docstring(ast.parse((PACKAGE / wing / "__init__.py").read_text())) or ""
        assert "May import" in doc, f"review/{wing}/__init__.py should say what the wing may import"


def test_at_most_ten_modules_sit_at_the_root_of_review():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_600_lines(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(REPO)} has {lines} lines"


def test_nothing_imports_up_the_wings():
    upward = [f"{module} -> {target}" for module, targets in _graph().items() for target in targets
              if _rank(target) > _rank(module)]
    assert upward == [], "imports running up the wings (order: root, " + ", ".join(review.WINGS) + ")"


def test_the_imports_have_no_circles():
    graph, state, circles = _graph(), {}, []

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                circles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_imports_another_modules_private_names():
    private = []
    for module, path in MODULES.items():
        imported = _imports(module, path)
        private += [f"{module} imports {source}.{name}" for source, name in imported if _private(name)]
        # a module imported whole, then reached into: `sites._zoom`
        bound = {target.rsplit(".", 1)[-1] for target, name in imported if not name}
        private += [f"{module} uses {node.value.id}.{node.attr}"
                    for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in bound and _private(node.attr)]
    assert private == []


def test_only_review_ui_imports_streamlit():
    importers = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("streamlit", "streamlit_folium") for n in names):
                importers.append(module)
    assert importers and all(m.startswith("review.ui.") for m in importers), importers
