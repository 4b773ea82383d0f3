"""The import rules of docs/architecture.md, read from the source with `ast` (nothing is
imported): which module imports which, and what each rule forbids. tests/test_layout.py runs
them on the real tree and on small trees made to break each rule."""

from __future__ import annotations

import ast
from pathlib import Path

EDGES = ("apps", "cli", "interop")  # everything else under the package is the library
MAX_LINES = 400


def module_name(root: Path, path: Path) -> tuple[str, bool]:
    """('rnnkit.apps.lm.model', False) for root/rnnkit/apps/lm/model.py; True for a package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def modules(root: Path, package: str) -> dict[str, Path]:
    return {module_name(root, path)[0]: path for path in sorted((root / package).rglob("*.py"))}


def imports_of(root: Path, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports, anywhere in the file (lazy imports too).
    `from X import Y` counts X.Y when that is a module, else X."""
    name, is_package = module_name(root, path)
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            origin = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a non-module attribute
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def floor(module: str, package: str) -> str:
    """'library', 'cli', 'interop', 'app:<name>', or 'entry' (the package's own __main__/__init__)."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "apps":
        return f"app:{parts[2]}" if len(parts) > 2 else "apps"
    if len(parts) > 1 and parts[1] in EDGES:
        return parts[1]
    if module == f"{package}.__main__":
        return "entry"
    return "library"


def violations(root: Path, package: str = "rnnkit") -> list[str]:
    """Every broken rule, one line each: (1) the library imports no app, cli or interop module;
    (2) an app imports only the library and itself; (3) an app's cli.py does no loading (no
    checkpoint reading: that and the kind checks live in its model or data modules); (4) no
    import cycle, and no source file over MAX_LINES lines."""
    found_modules = modules(root, package)
    known = set(found_modules)
    graph = {name: imports_of(root, path, known) for name, path in found_modules.items()}
    problems = []
    for name, targets in sorted(graph.items()):
        mine = floor(name, package)
        for target in sorted(targets):
            theirs = floor(target, package)
            if mine == "library" and theirs != "library":
                problems.append(f"library module {name} imports {target} ({theirs})")
            elif mine.startswith("app:") and theirs not in ("library", mine) and target != f"{package}.apps":
                problems.append(f"{name} ({mine}) imports {target} ({theirs}): move what both need into the library")
        if mine.startswith("app:") and name.endswith(".cli"):
            loading = {f"{package}.checkpoint"} & targets
            if loading:
                problems.append(f"{name} reads checkpoints itself ({', '.join(sorted(loading))}); "
                                "loading and kind checks belong in the app's model module")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    for path in sorted(found_modules.values()):
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            problems.append(f"{path.relative_to(root)} has {lines} lines (at most {MAX_LINES}); split it by concern")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm,
    iterative), written as a path that returns to its start."""
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]

    def visit(start: str) -> None:
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
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
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [path_through(graph, component) for component in components]


def path_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A cycle inside `component`, found by walking from its first member until a repeat."""
    members, path = set(component), [component[0]]
    while True:
        step = sorted(graph[path[-1]] & members)[0]
        if step in path:
            return path[path.index(step):] + [step]
        path.append(step)
