"""The import direction of docs/design.md, "Layers": no cycles, and the
lower layers never import the estimators."""
import ast
import pathlib
import re

import fastrbm

PACKAGE = pathlib.Path(fastrbm.__file__).parent
ESTIMATORS = {"rbm", "gaussian", "dbn"}
EDGES = {"cli", "plotting", "datasets", "io"}
# what sits below the estimators and must not import them (or the edges)
LOWER = {"evaluation", "_engine", "_units", "_fit_loop", "_random", "_validation", "_backend",
         "_cupy", "_cupy_mlp", "_reference", "_mlp_reference", "_interrupt"}


def imports_of(path):
    """fastrbm modules imported by a module (relative or absolute), at any depth."""
    if path.suffix == ".pyx":
        # Cython: the import lines only (the rest is not Python syntax)
        return set(re.findall(r"^\s*(?:from|cimport)\s+(?:fastrbm)?\.(\w+)", path.read_text(),
                              re.MULTILINE))
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("fastrbm."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("fastrbm."))
    return found


def graph():
    modules = {path.stem: path for path in PACKAGE.glob("*.py")}
    modules.update({path.stem: path for path in PACKAGE.glob("*.pyx")})
    return {name: imports_of(path) & set(modules) for name, path in modules.items()}


def test_lower_layers_import_no_estimator_and_no_edge():
    edges = graph()
    for name in LOWER & set(edges):
        assert not edges[name] & (ESTIMATORS | EDGES), (name, edges[name])


def test_no_import_cycle():
    edges = graph()
    state = {}

    def visit(name, path):
        state[name] = "open"
        for other in sorted(edges.get(name, ())):
            assert state.get(other) != "open", " -> ".join(path + [other])
            if other not in state:
                visit(other, path + [other])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state and name != "__init__":
            visit(name, [name])
