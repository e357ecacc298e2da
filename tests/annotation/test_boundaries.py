"""annotation/ is the lowest app: nothing in it imports aggregation (nor its sub-apps), not even
inside a function. Aggregation and learning reach it through annotation/hooks.py instead."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = "aggregation"
# Calls that import a module named by a string.
DYNAMIC_IMPORTS = {"import_module", "import_string", "__import__"}


def _forbidden(module: str) -> bool:
    return module == FORBIDDEN or module.startswith(FORBIDDEN + ".")


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def upward_imports(package: Path) -> list[str]:
    """'file:line module' for every import of aggregation under package, static or dynamic."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                # A relative import stays inside annotation: `from ..x` cannot leave the top package.
                modules = [node.module or ""] if node.level == 0 else []
            elif isinstance(node, ast.Call) and _called_name(node) in DYNAMIC_IMPORTS and node.args:
                first = node.args[0]
                modules = [first.value] if isinstance(first, ast.Constant) and isinstance(first.value, str) else []
            else:
                continue
            found += [f"{path.relative_to(package.parent)}:{node.lineno} {m}" for m in modules if _forbidden(m)]
    return found


def test_annotation_imports_nothing_from_aggregation():
    assert upward_imports(ROOT / "annotation") == []


def test_the_check_finds_every_kind_of_upward_import(tmp_path):
    package = tmp_path / "annotation"
    (package / "sub").mkdir(parents=True)
    (package / "ok.py").write_text(
        "import aggregations_elsewhere\nfrom . import aggregation\nfrom .aggregation import x\n"
        "from annotation.models import Item\nimport_module(name)\n"
    )
    (package / "sub" / "bad.py").write_text(
        "import aggregation\n"
        "import os, aggregation.tasks as t\n"
        "from aggregation.learning import selectors\n"
        "def lazy():\n"
        "    from aggregation.tasks import aggregate_item\n"
        "    importlib.import_module('aggregation.tasks')\n"
        "    __import__('aggregation')\n"
    )
    assert upward_imports(package) == [
        "annotation/sub/bad.py:1 aggregation",
        "annotation/sub/bad.py:2 aggregation.tasks",
        "annotation/sub/bad.py:3 aggregation.learning",
        "annotation/sub/bad.py:5 aggregation.tasks",
        "annotation/sub/bad.py:6 aggregation.tasks",
        "annotation/sub/bad.py:7 aggregation",
    ]
