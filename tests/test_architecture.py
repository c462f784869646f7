"""The package layering: no import cycles between capabilities, training and latent
compression never depend on evaluation, and record types stay light to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import reasonrag

SOURCE = Path(reasonrag.__file__).parent


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def package_imports() -> dict[str, set[str]]:
    """Top-level package of reasonrag -> the other top-level packages it imports."""
    graph: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        module = ".".join(("reasonrag", *path.relative_to(SOURCE).with_suffix("").parts))
        here = _package(module.removesuffix(".__init__"))
        if not path.relative_to(SOURCE).parts[:-1] and path.stem != "__init__":
            here = path.stem  # a top-level module such as cli.py is its own unit
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("reasonrag.") and _package(name) != here:
                    graph.setdefault(here, set()).add(_package(name))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_packages_form_no_import_cycle() -> None:
    assert _cycle(package_imports()) is None


def test_training_and_latent_code_never_import_evaluation() -> None:
    graph = package_imports()
    for package in ("train", "latent", "datasets", "reason", "index", "llm", "embed", "ingest"):
        assert "eval" not in graph.get(package, set()), package
        assert "cli" not in graph.get(package, set()), package


def test_record_types_do_not_load_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "import reasonrag.index.records, reasonrag.reason.records, reasonrag.llm.base\n"
        "import reasonrag.errors, reasonrag.config\n"
        "heavy = {'faiss', 'bm25s', 'pyarrow', 'torch', 'transformers'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr
