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
    "wire": {"model"},
    "api": {"model", "core", "wire"},
    "client": {"model", "wire"},
    "cli": {"model", "client", "wire"},
}
CLI_IN_PROCESS = {"host_commands.py", "image_commands.py", "serve_command.py"}


def _package_of(path: Path) -> str:
    # The package a module's relative imports start from: its directory (an __init__.py's too).
    directory = path.resolve().parent
    if not directory.is_relative_to(SOURCE.parent):
        return ""
    return ".".join(directory.relative_to(SOURCE.parent).parts)


def _is_layer(name: str) -> bool:
    return (SOURCE / name).is_dir()


def _absolute(module: str | None, level: int, package: str) -> str:
    """The absolute module a from-import names (level: its leading dots)."""
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _cloche_imports(path: Path, package: str | None = None) -> set[str]:
    """The cloche layers a module imports, relative imports resolved against package."""
    package = package if package is not None else _package_of(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    layers = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module, node.level, package)
            names = [module]
            if module == "cloche":
                # 'from cloche import host' (or 'from .. import host') names a layer per name.
                names = [f"cloche.{alias.name}" for alias in node.names if _is_layer(alias.name)]
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


def test_the_checker_resolves_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        "from ..core.host import init_host\n"
        "from .. import store\n"
        "from . import common\n"
        "from .common import console\n"
        "from cloche import runtime\n"
    )
    assert _cloche_imports(module, package="cloche.cli") == {"core", "store", "cli", "runtime"}


def test_a_module_resolves_against_its_own_package() -> None:
    assert _package_of(SOURCE / "core" / "images.py") == "cloche.core"
    assert _package_of(SOURCE / "core" / "__init__.py") == "cloche.core"
    assert _absolute(None, 1, "cloche.core") == "cloche.core"
    assert _absolute("ports", 1, "cloche.core") == "cloche.core.ports"
    assert _absolute("model.config", 2, "cloche.core") == "cloche.model.config"
