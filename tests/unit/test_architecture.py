"""The layers of DESIGN.md: imports between cloche's packages only point downward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src" / "cloche"

# Each layer and the cloche layers it may import. The CLI talks to the daemon through the
# client; only its host bootstrap commands (which must work before any daemon exists) and the
# daemon entry point reach into core and api.
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "render": {"model"},
    "host": {"model"},
    "runtime": {"model"},
    "store": {"model"},
    "core": {"model", "render", "host", "runtime", "store"},
    "api": {"model", "core"},
    "client": {"model"},
    "cli": {"model", "client"},
}
CLI_IN_PROCESS = {"host_commands.py", "image_commands.py", "serve_command.py"}


def _cloche_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    layers = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cloche" and len(parts) > 1:
                layers.add(parts[1])
    return layers


def _modules() -> list[Path]:
    return sorted(path for path in SOURCE.rglob("*.py") if path.parent != SOURCE)


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(SOURCE)))
def test_imports_point_downward(path: Path) -> None:
    layer = path.relative_to(SOURCE).parts[0]
    allowed = ALLOWED[layer] | {layer}
    if layer == "cli" and path.name in CLI_IN_PROCESS:
        allowed |= {"core", "api"}
    forbidden = _cloche_imports(path) - allowed
    assert not forbidden, f"{path.relative_to(SOURCE)} imports {sorted(forbidden)}"


def test_every_layer_is_known() -> None:
    layers = {
        path.name for path in SOURCE.iterdir() if path.is_dir() and path.name != "__pycache__"
    }
    assert layers <= set(ALLOWED), f"unknown layers {sorted(layers - set(ALLOWED))}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from cloche.core.host import init_host\nimport cloche.api.app\n")
    assert _cloche_imports(module) == {"core", "api"}
