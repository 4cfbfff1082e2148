"""Instances in LXD: reading them, creating them (a user's template and copies of it), their life
cycle (start, stop, delete, the wait for a boot) and their limits and devices."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from cloche.model.errors import ClocheError, Conflict, HostFailure, Invalid, NotFound
from cloche.model.instances import (
    CPU_KEY,
    BootFailure,
    BootReport,
    InstanceInfo,
    InstanceState,
    TemplateReport,
    limits_patch,
)
from cloche.model.limits import Limits
from cloche.runtime.instance_exec import InstanceExec
from cloche.runtime.lxd_errors import OperationFailed, lxd_text
from cloche.runtime.lxd_records import (
    changed_devices,
    failed_units,
    instance_info,
    instance_state,
    last_line,
    last_lines,
    replacement,
    template_is_current,
)

# What systemd answers while it is still on its way to 'running'.
_BOOTING_STATES = frozenset({"initializing", "starting", "offline", "unknown", ""})
_POLL_SECONDS = 0.25
# The longest one `systemctl is-system-running --wait` may block before the checks run again.
_BOOT_WAIT_SECONDS = 10.0
_CPU_SETTLE_SECONDS = 2.0
_CHANGE_SECONDS = 60


class InstanceLifecycle(InstanceExec):
    """The instances of one project: read, create, start, stop, delete, resize (and exec)."""

    # Reading -------------------------------------------------------------------------------

    def _raw(self, name: str) -> dict[str, Any]:
        return self.api.read(("instances", name))

    def find(self, name: str) -> InstanceInfo | None:
        """The instance named name, or None."""
        try:
            with self.api.refusals(f"read instance {name!r}"):
                return instance_info(self._raw(name))
        except NotFound:
            return None

    def get(self, name: str) -> InstanceInfo:
        """The instance named name; NotFound when it does not exist."""
        info = self.find(name)
        if info is None:
            raise NotFound(
                f"There is no environment {name!r} in project {self.project}; check the name."
            )
        return info

    def list(self) -> list[InstanceInfo]:
        """Every instance of the project (templates included), sorted by name."""
        # Raw API: pylxd 2.4's instances.all() keeps '?project=...' in the names it returns.
        with self.api.refusals("list instances"):
            raws = self.api.read_all(("instances",))
        return sorted((instance_info(raw) for raw in raws), key=lambda info: info.name)

    def state(self, name: str) -> InstanceState:
        """Status, IPv4 address on eth0, memory use and process count of an instance."""
        with self.api.refusals(f"read the state of {name!r}"):
            return instance_state(name, self.api.read(("instances", name, "state")))

    def states(self) -> dict[str, InstanceState]:
        """The state of every instance of the project, in one request (for listings)."""
        with self.api.refusals("list instance states"):
            raws = self.api.read_all(("instances",), recursion=2)
        return {
            str(raw["name"]): instance_state(
                str(raw["name"]), raw.get("state") or {}, str(raw.get("status") or "")
            )
            for raw in raws
        }

    def status(self, name: str) -> str:
        """LXD's status word for an instance: Running, Stopped, Frozen, Error."""
        return self.state(name).status

    def console_log(self, name: str, lines: int = 40) -> str:
        """The last lines of the instance's console (boot messages), or of LXD's log for it."""
        with self.api.refusals(f"read the console of {name!r}"):
            console = self.api.read_bytes(("instances", name, "console"))
        text = console.decode("utf-8", "replace").replace("\r", "")
        if not text.strip():
            try:
                with self.api.refusals(f"read the LXD log of {name!r}"):
                    log = self.api.read_bytes(("instances", name, "logs", "lxc.log"))
                text = log.decode("utf-8", "replace")
            except ClocheError:
                text = ""
        return last_lines(text, lines)

    # Creating ------------------------------------------------------------------------------

    def create(self, request: Mapping[str, Any], timeout: float = 300) -> InstanceInfo:
        """Create an instance (stopped) from an LXD request body."""
        name = request["name"]
        # LXD checks the project's limits before the name, so a full project would report a
        # taken name as a quota problem.
        if self.find(name) is not None:
            raise Conflict(
                f"Environment {name!r} already exists in project {self.project}; choose another "
                "name."
            )
        with self.api.refusals(f"create {name!r}"):
            self.api.send("post", ("instances",), timeout, body=request)
        return self.get(name)

    def create_from_template(
        self, request: Mapping[str, Any], timeout: float = 120
    ) -> InstanceInfo:
        """Create an environment as a copy-on-write copy of the user's template (no remap)."""
        source = request.get("source") or {}
        if source.get("type") != "copy":
            raise Invalid(
                f"Environment {request.get('name')!r} must be copied from a template; render "
                "its request with source_instance."
            )
        template = self.get(str(source["source"]))
        if template.running:
            raise HostFailure(
                f"Template {template.name!r} is running, so a copy would catch it mid-write; "
                "run ensure_template again to stop it."
            )
        return self.create(request, timeout)

    def image_fingerprint(self, alias: str) -> str:
        """The fingerprint the image alias points at (images come from the default project)."""
        with self.api.refusals(f"find image {alias!r}"):
            return str(self.api.read(("images", "aliases", alias))["target"])

    def ensure_template(
        self, request: Mapping[str, Any], boot_timeout: float = 120
    ) -> TemplateReport:
        """Make the user's template: created from the image, booted once (shifted), stopped."""
        name = request["name"]
        alias = str(request["source"]["alias"])
        existing = self.find(name)
        try:
            fingerprint: str | None = self.image_fingerprint(alias)
        except NotFound:
            if existing is None:
                raise
            fingerprint = None
        action: Literal["created", "recreated"] = "created"
        if existing is not None:
            if template_is_current(existing, fingerprint):
                if existing.running:
                    self.stop(name)
                return TemplateReport(name=name, action="kept")
            # A newer image behind the alias, or a template never started: make it again.
            self.delete(name)
            action = "recreated"
        started = time.monotonic()
        self.create(request)
        created = time.monotonic()
        try:
            self.start(name)
            first_started = time.monotonic()
            self.wait_until_booted(name, boot_timeout)
            booted = time.monotonic()
            self.stop(name)
        except ClocheError:
            self.delete(name)
            raise
        stopped = time.monotonic()
        return TemplateReport(
            name=name,
            action=action,
            create_seconds=created - started,
            first_start_seconds=first_started - created,
            boot_seconds=booted - first_started,
            stop_seconds=stopped - booted,
        )

    # Life cycle ----------------------------------------------------------------------------

    def _change_state(
        self, name: str, action: str, timeout: float, *, force: bool = False, grace: int = -1
    ) -> None:
        body = {"action": action, "force": force, "timeout": grace}
        self.api.send_when_free("put", ("instances", name, "state"), timeout, body=body)

    def start(self, name: str, timeout: float = 60) -> None:
        """Start an instance (no-op when running); boot progress is wait_until_booted's job."""
        if self.status(name) == "Running":
            return
        with self.api.refusals(f"start {name!r}"):
            self._change_state(name, "start", timeout)

    def stop(
        self, name: str, timeout: float = 30, force_timeout: float = 60
    ) -> Literal["stopped", "forced", "already stopped"]:
        """Stop gracefully within timeout seconds, then by force; say which it took."""
        if self.status(name) == "Stopped":
            return "already stopped"
        grace = max(1, round(timeout))
        try:
            with self.api.refusals(f"stop {name!r}"):
                # A stop without a deadline once hung 14 minutes on a booting container.
                self._change_state(name, "stop", timeout + 15, grace=grace)
        except (HostFailure, Invalid):
            pass  # the forced stop below follows
        if self.status(name) == "Stopped":
            return "stopped"
        try:
            with self.api.refusals(f"force {name!r} to stop"):
                self._change_state(name, "stop", force_timeout, force=True)
        except (HostFailure, Invalid) as error:
            if "already stopped" not in str(error):
                raise
        if self.status(name) != "Stopped":
            raise HostFailure(
                f"Environment {name!r} in project {self.project} is still running after a forced "
                "stop; check LXD's log and 'lxc info --show-log'."
            )
        return "forced"

    def restart(self, name: str, timeout: float = 30) -> None:
        """Stop (gracefully, then by force) and start again."""
        self.stop(name, timeout)
        self.start(name)

    def delete(self, name: str, timeout: float = 120) -> bool:
        """Delete an instance whatever its state; False when there was none."""
        info = self.find(name)
        if info is None:
            return False
        if info.status != "Stopped":
            with self.api.refusals(f"force {name!r} to stop"):
                try:
                    self._change_state(name, "stop", timeout, force=True)
                except OperationFailed as error:
                    if "already stopped" not in lxd_text(error):
                        raise
        with self.api.refusals(f"delete {name!r}"):
            self.api.send_when_free("delete", ("instances", name), timeout)
        return True

    def wait_until_booted(self, name: str, timeout: float = 120) -> BootReport:
        """Wait until systemd reports running (or degraded); BootFailure if it stops or stalls."""
        started = time.monotonic()
        deadline = started + timeout
        answer = "unknown"
        while True:
            status = self.status(name)
            if status != "Running":
                tail = self.console_log(name)
                raise self._boot_failure(
                    name,
                    f"stopped while booting (status {status}, console ends with "
                    f"{last_line(tail)!r}); read its console log and fix the image, its limits "
                    "or the host's inotify settings.",
                    tail,
                )
            # --wait returns the moment systemd finishes starting up: no polling delay. Each
            # call is bounded, so a stopped container or a stall is noticed by the checks here.
            wait = max(1.0, min(_BOOT_WAIT_SECONDS, deadline - time.monotonic()))
            try:
                result = self.exec(name, ["systemctl", "is-system-running", "--wait"], timeout=wait)
                answer = result.text.strip()
            except (HostFailure, Conflict, Invalid):
                answer = "unreachable"
            if answer == "running":
                return BootReport(name, "running", (), time.monotonic() - started)
            if answer == "degraded":
                listing = self.exec(
                    name,
                    ["systemctl", "list-units", "--failed", "--plain", "--no-legend"],
                    timeout=10,
                )
                return BootReport(
                    name, "degraded", failed_units(listing.text), time.monotonic() - started
                )
            if answer not in _BOOTING_STATES and answer != "unreachable":
                raise self._boot_failure(
                    name,
                    f"booted into systemd state {answer!r} instead of running; read its console "
                    "log.",
                    self.console_log(name),
                )
            if time.monotonic() >= deadline:
                raise self._boot_failure(
                    name,
                    f"did not finish booting within {timeout:g} s (systemd says {answer!r}); "
                    "read its console log.",
                    self.console_log(name),
                )
            time.sleep(_POLL_SECONDS)

    def _boot_failure(self, name: str, what: str, tail: str) -> BootFailure:
        return BootFailure(f"Environment {name!r} in project {self.project} {what}", tail)

    # Limits and devices --------------------------------------------------------------------

    def change_devices(
        self,
        name: str,
        add: Mapping[str, Mapping[str, str]],
        remove: Sequence[str] = (),
    ) -> None:
        """Add or replace, and remove, devices of the instance itself (profiles' stay)."""
        with self.api.refusals(f"change the devices of {name!r}"):
            raw = self._raw(name)
            body = replacement(raw, devices=changed_devices(raw, add, remove))
            # PUT, not PATCH: LXD's PATCH merges devices, so it cannot remove one.
            self.api.send("put", ("instances", name), _CHANGE_SECONDS, body=body)

    def set_config(self, name: str, values: Mapping[str, str]) -> None:
        """Set keys of the instance's own config (PATCH merges: the others stay)."""
        with self.api.refusals(f"change the config of {name!r}"):
            self._patch(name, {"config": dict(values)})

    def set_limits(self, name: str, limits: Limits) -> InstanceInfo:
        """Change CPU, memory, process and root disk limits (applied live when running)."""
        with self.api.refusals(f"change the limits of {name!r}"):
            raw = self._raw(name)
            root = dict((raw.get("devices") or {}).get("root") or raw["expanded_devices"]["root"])
            self._patch(name, limits_patch(limits, root))
        cpu_before = (raw.get("config") or {}).get(CPU_KEY)
        if raw.get("status") == "Running" and cpu_before != str(limits.cpu):
            self._settle_cpu(name, limits.cpu)
        return self.get(name)

    def _patch(self, name: str, body: Mapping[str, Any]) -> None:
        self.api.send("patch", ("instances", name), _CHANGE_SECONDS, body=body)

    def _settle_cpu(self, name: str, cpu: int) -> None:
        # LXD 5.0.2 pins a CPU count through a background balancer that sometimes runs before the
        # new value is stored and then keeps the old pinning (measured: 2 misses in 16 resizes).
        # Writing the same count spelled differently ("02", then "2") triggers it again.
        wanted = str(cpu)
        for spelling in ("", f"0{cpu}", wanted):
            if spelling:
                with self.api.refusals(f"change the CPU limit of {name!r}"):
                    self._patch(name, {"config": {CPU_KEY: spelling}})
            deadline = time.monotonic() + _CPU_SETTLE_SECONDS
            while True:
                seen = self.exec(name, ["nproc"], timeout=10).text.strip()
                if seen in (wanted, ""):
                    return
                if time.monotonic() >= deadline:
                    break
                time.sleep(_POLL_SECONDS)
        raise HostFailure(
            f"LXD stored the CPU limit {cpu} of {name!r} but still runs it on {seen} CPUs; "
            "restart the environment to apply it."
        )
