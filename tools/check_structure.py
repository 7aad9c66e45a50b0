"""Fails on an import cycle, an import pointing back up the layering, an import of the
command line, or a store key written as a literal outside ``gradsweep/keys.py``.

Run from the repository root: ``python tools/check_structure.py``. The layers follow
the flow a trial takes; a module may import its own layer and the layers below.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

PACKAGE = Path(__file__).resolve().parents[1] / "gradsweep"
LAYERS = [
    {
        "gradsweep.errors",
        "gradsweep.keys",
        "gradsweep.logs",
        "gradsweep.redaction",
        "gradsweep.retry",
        "gradsweep.stopping",
    },
    {"gradsweep.config"},
    {"gradsweep.data"},
    {"gradsweep.model"},
    {"gradsweep.training"},
    {"gradsweep.diagnosis"},
    {"gradsweep.tracking"},
    {"gradsweep.study"},
    {"gradsweep.report"},
    {"gradsweep.commands"},
    {"gradsweep.cli", "gradsweep.__main__", "gradsweep"},
]
KEYS_MODULE = "gradsweep.keys"
# A metric key: a recorded family, a slash, more (grad/<layer>/norm_mean, val/loss, time/...).
METRIC_KEY = re.compile(r"^(grad|act|train|val|theory|measured|time|best)/")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    for index in range(len(LAYERS) - 1, -1, -1):
        for prefix in LAYERS[index]:
            if module == prefix or (prefix != "gradsweep" and module.startswith(prefix + ".")):
                return index
    raise SystemExit(f"tools/check_structure.py: {module} is in no layer; add it to LAYERS")


def imports_of(tree: ast.AST, module: str, modules: Set[str]) -> List[Tuple[int, str]]:
    """(line, imported gradsweep module) for every import, at any depth (lazy ones too)."""
    found = []
    for node in ast.walk(tree):
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative import
                base = ".".join(module.split(".")[: -node.level] + [node.module])
            # `from gradsweep.report import regime_map` imports the submodule
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            if name == "gradsweep" or name.startswith("gradsweep."):
                while name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                found.append((node.lineno, name))
    return found


def key_literals(tree: ast.AST) -> List[Tuple[int, str]]:
    """Strings (and f-string heads) that look like metric keys."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            head = str(node.values[0].value)
            if METRIC_KEY.match(head):
                found.append((node.lineno, head + "..."))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and METRIC_KEY.match(node.value):
            found.append((node.lineno, node.value))
    return found


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle (module-level and lazy imports alike), or []."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def check(package: Path = PACKAGE) -> List[str]:
    files = sorted(package.rglob("*.py"))
    modules = {module_name(f) for f in files}
    problems: List[str] = []
    graph: Dict[str, Set[str]] = {}
    for path in files:
        module = module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(package.parent)
        graph[module] = set()
        for line, imported in imports_of(tree, module, modules):
            if imported == module or imported == "gradsweep":
                continue  # a package's own __init__ is not a dependency of its layers
            graph[module].add(imported)
            if imported == "gradsweep.cli" and module != "gradsweep.__main__":
                problems.append(f"{where}:{line}: imports the command line (gradsweep.cli); nothing may")
            elif layer_of(imported) > layer_of(module):
                problems.append(
                    f"{where}:{line}: {module} (layer {layer_of(module)}) imports {imported} "
                    f"(layer {layer_of(imported)}): an import pointing back up"
                )
        if module != KEYS_MODULE:
            for line, literal in key_literals(tree):
                problems.append(
                    f"{where}:{line}: metric key {literal!r} written as a literal; name it in {KEYS_MODULE}"
                )
    cycle = find_cycle(graph)
    if cycle:
        problems.append("import cycle: " + " -> ".join(cycle))
    return problems


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    print(f"check_structure: {len(problems)} problem(s)" if problems else "check_structure: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
