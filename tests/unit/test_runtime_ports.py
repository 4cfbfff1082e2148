"""The LXD ports (core/ports/): the runtime adapters and the unit tests' fakes both fit them.

mypy checks the assignments below (`mypy tests/unit/test_runtime_ports.py`); the tests check
at run time that every port method exists with the same parameters, defaults included.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from cloche.core.ports import Exports, Instances, Projects
from cloche.runtime.exports import LxdExports
from cloche.runtime.instances import LxdInstances
from cloche.runtime.projects import LxdProjects
from tests.unit.fakes import FakeInstances, FakeProjects


def _adapters_fit(
    instances: LxdInstances, projects: LxdProjects, exports: LxdExports
) -> tuple[Instances, Projects, Exports]:
    return instances, projects, exports


def _fakes_fit(instances: FakeInstances, projects: FakeProjects) -> tuple[Instances, Projects]:
    return instances, projects


def _members(port: type) -> list[str]:
    return sorted(
        name for name, value in vars(port).items() if callable(value) and not name.startswith("_")
    )


def _parameters(function: Callable[..., object]) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(
    ("port", "implementation"),
    [
        (Instances, LxdInstances),
        (Instances, FakeInstances),
        (Projects, LxdProjects),
        (Projects, FakeProjects),
        (Exports, LxdExports),
    ],
    ids=lambda cls: cls.__name__,
)
def test_implementation_has_every_port_method(port: type, implementation: type) -> None:
    for member in _members(port):
        assert hasattr(implementation, member), f"{implementation.__name__} has no {member}"
        wanted = _parameters(getattr(port, member))
        assert _parameters(getattr(implementation, member)) == wanted, member


def test_the_ports_name_what_core_calls() -> None:
    assert {"find", "exec", "set_limits", "restore_snapshot", "list"} <= set(_members(Instances))
    assert _members(Projects) == [
        "delete_project",
        "ensure_profiles",
        "ensure_project",
        "get_project",
        "list_projects",
    ]
