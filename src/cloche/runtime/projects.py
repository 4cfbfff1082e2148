"""Tenants in LXD: one restricted project per user, its quotas, usage and security profiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pylxd import exceptions as lxd_errors

from cloche.model.errors import Conflict, NotFound
from cloche.model.host import LxdObject
from cloche.model.instances import ROLE_TEMPLATE
from cloche.runtime.instances import LxdInstances
from cloche.runtime.lxd import Lxd
from cloche.runtime.lxd_api import LxdApi
from cloche.runtime.lxd_errors import translate

Action = Literal["created", "updated", "kept"]


@dataclass(frozen=True)
class Usage:
    """One project resource: LXD's limit (None when unlimited) and what is in use."""

    limit: int | None
    usage: int

    @property
    def available(self) -> int | None:
        """What is left under the limit, or None when unlimited."""
        return None if self.limit is None else max(0, self.limit - self.usage)


@dataclass(frozen=True)
class ProjectUsage:
    """A project's limits and usage, keyed as LXD keys them (containers, cpu, memory, disk...)."""

    project: str
    resources: dict[str, Usage] = field(default_factory=dict)

    def __getitem__(self, resource: str) -> Usage:
        return self.resources[resource]


def _usage(raw: dict[str, Any]) -> Usage:
    limit = int(raw.get("Limit", -1))
    return Usage(limit=None if limit < 0 else limit, usage=int(raw.get("Usage", 0)))


class LxdProjects:
    """Projects and their profiles, through a connection to LXD's default project."""

    def __init__(self, lxd: Lxd) -> None:
        self.lxd = lxd
        self._client: Any = lxd.client

    # Projects ------------------------------------------------------------------------------

    def get_project(self, name: str) -> LxdObject | None:
        """The project named name (description and config), or None."""
        try:
            project = self._client.projects.get(name)
        except lxd_errors.NotFound:
            return None
        except lxd_errors.LXDAPIException as error:
            raise translate(error, f"read project {name!r}") from error
        return LxdObject(
            name=project.name,
            description=project.description or "",
            config={key: str(value) for key, value in (project.config or {}).items()},
        )

    def list_projects(self, prefix: str = "") -> list[str]:
        """Names of the projects whose name starts with prefix, sorted."""
        try:
            names = [project.name for project in self._client.projects.all()]
        except lxd_errors.LXDAPIException as error:
            raise translate(error, "list projects") from error
        return sorted(name for name in names if name.startswith(prefix))

    def ensure_project(self, request: dict[str, Any]) -> Action:
        """Create the project, or replace its description and config when they differ."""
        name = request["name"]
        config = {key: str(value) for key, value in request.get("config", {}).items()}
        description = request.get("description", "")
        observed = self.get_project(name)
        try:
            if observed is None:
                self._client.projects.create(name, description=description, config=config)
                return "created"
            if observed.config == config and observed.description == description:
                return "kept"
            project = self._client.projects.get(name)
            project.description = description
            project.config = config
            project.save(wait=True)
        except lxd_errors.LXDAPIException as error:
            verb = "create" if observed is None else "update"
            raise translate(error, f"{verb} project {name!r}") from error
        return "updated"

    def project_usage(self, name: str) -> ProjectUsage:
        """The project's limits and usage, as LXD counts them (templates included)."""
        try:
            response = self._client.api.projects[name].state.get()
        except lxd_errors.LXDAPIException as error:
            raise translate(error, f"read the usage of project {name!r}") from error
        resources = (response.json().get("metadata") or {}).get("resources") or {}
        return ProjectUsage(
            project=name,
            resources={key: _usage(value) for key, value in resources.items()},
        )

    def delete_project(self, name: str, timeout: float = 120) -> None:
        """Delete a project, its templates and profiles; refuse while environments remain."""
        if self.get_project(name) is None:
            raise NotFound(f"LXD has no project {name!r}; check the user name.")
        project_lxd = Lxd(self.lxd.socket_path, project=name)
        templates = LxdInstances(project_lxd)
        instances = templates.list()
        remaining = [instance.name for instance in instances if instance.role != ROLE_TEMPLATE]
        if remaining:
            raise Conflict(
                f"Project {name!r} still holds {len(remaining)} environment(s) "
                f"({', '.join(remaining)}); delete them first."
            )
        for instance in instances:
            templates.delete(instance.name, timeout=timeout)
        try:
            for profile in self._profile_names(project_lxd):
                if profile != "default":
                    project_lxd.client.api.profiles[profile].delete()
            self._client.api.projects[name].delete()
        except lxd_errors.LXDAPIException as error:
            raise translate(error, f"delete project {name!r}") from error

    # Profiles in a project -----------------------------------------------------------------

    @staticmethod
    def _profile_names(project_lxd: Lxd) -> list[str]:
        # Raw API: pylxd 2.4 keeps '?project=...' in the names profiles.all() returns.
        return sorted(LxdApi(project_lxd.client).read_names(("profiles",)))

    def list_profiles(self, project: str) -> list[str]:
        """Names of the profiles of a project."""
        try:
            return self._profile_names(Lxd(self.lxd.socket_path, project=project))
        except lxd_errors.LXDAPIException as error:
            raise translate(error, "list profiles", project) from error

    def ensure_profiles(self, project: str, requests: list[dict[str, Any]]) -> dict[str, Action]:
        """Create or update each profile of requests inside project; return what was done."""
        project_lxd = Lxd(self.lxd.socket_path, project=project)
        done: dict[str, Action] = {}
        for request in requests:
            name = request["name"]
            config = {key: str(value) for key, value in request.get("config", {}).items()}
            devices = request.get("devices", {})
            description = request.get("description", "")
            try:
                observed = project_lxd.get_profile(name)
                body = {**request, "config": config}
                if observed is None:
                    project_lxd.create_profile(body)
                    done[name] = "created"
                elif (observed.config, observed.devices, observed.description) == (
                    config,
                    devices,
                    description,
                ):
                    done[name] = "kept"
                else:
                    project_lxd.update_profile(body)
                    done[name] = "updated"
            except lxd_errors.LXDAPIException as error:
                raise translate(error, f"converge profile {name!r}", project) from error
        return done

    def get_profile(self, project: str, name: str) -> LxdObject | None:
        """The profile named name inside project, or None."""
        return Lxd(self.lxd.socket_path, project=project).get_profile(name)

    def delete_profile(self, project: str, name: str) -> None:
        """Delete a profile of a project; a Conflict while environments use it."""
        client = Lxd(self.lxd.socket_path, project=project).client
        try:
            client.api.profiles[name].delete()
        except lxd_errors.LXDAPIException as error:
            raise translate(error, f"delete profile {name!r}", project) from error
