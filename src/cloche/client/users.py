"""Users (tenants) with their quotas, their SSH keys, and the ssh_config that reaches them."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import JsonValue, TypeAdapter

from cloche.client.connection import path_of
from cloche.client.operations import DEFAULT_WAIT, OperationHandle
from cloche.client.resource import Resource, given
from cloche.model.records import Role
from cloche.wire import KeyAdded, KeyRemoved, SshConfig, User, UserDetail

_KEYS_ADDED = TypeAdapter(list[KeyAdded])


class Users(Resource):
    """/v1/users: tenants, each with an LXD project, a uid range and quotas."""

    def add(
        self,
        name: str,
        ssh_keys: Sequence[str],
        *,
        role: Role | None = None,
        max_envs: int | None = None,
        cpu: int | None = None,
        memory: str | None = None,
        disk: str | None = None,
    ) -> User:
        """Add a user with at least one public key (quota sizes as text: '8GiB')."""
        body: dict[str, JsonValue] = {
            "name": name,
            "ssh_keys": list(ssh_keys),
            **given(role=role, max_envs=max_envs, cpu=cpu, memory=memory, disk=disk),
        }
        return self._connection.fetch(User, "POST", path_of("users"), body=body)

    def list(self) -> list[User]:
        """Every user with their quotas and usage."""
        return self._connection.fetch_list(User, path_of("users"))

    def get(self, name: str) -> UserDetail:
        """One user with their keys and the names of their environments."""
        return self._connection.fetch(UserDetail, "GET", path_of("users", name))

    def set_host_account(self, name: str, host_account: str | None) -> User:
        """Let a host account call the daemon's socket as this user (None: no account may)."""
        path = path_of("users", name, "host-account")
        body = {"host_account": host_account}
        return self._connection.fetch(User, "PUT", path, body=body)

    def set_quota(
        self,
        name: str,
        *,
        max_envs: int | None = None,
        cpu: int | None = None,
        memory: str | None = None,
        disk: str | None = None,
        max_egress: str | None = None,
    ) -> User:
        """Change a user's quotas (the others keep theirs); LXD's project limits follow.

        max_egress ('none', 'allow' or 'open') is the widest egress the user may give their own
        environments.
        """
        body = given(max_envs=max_envs, cpu=cpu, memory=memory, disk=disk, max_egress=max_egress)
        return self._connection.fetch(User, "PATCH", path_of("users", name), body=body)

    def remove(
        self, name: str, *, purge: bool = False, wait: bool = False, timeout: float = DEFAULT_WAIT
    ) -> OperationHandle:
        """Remove a user; refused while they have environments unless purge deletes them."""
        params = {"purge": purge}
        return self._start(
            "DELETE", path_of("users", name), params=params, wait=wait, timeout=timeout
        )

    def ssh_config(
        self,
        name: str,
        known_hosts_path: str,
        *,
        host: str | None = None,
        port: int | None = None,
        identity_file: str | None = None,
    ) -> SshConfig:
        """An ssh_config block per environment of the user, and the known_hosts text it pins.

        known_hosts_path is where the caller will write the known_hosts text (the config
        names it); host and port are how clients reach this host's sshd; identity_file, the
        private key every block names (IdentitiesOnly).
        """
        params: dict[str, str | int | bool] = {"known_hosts_path": known_hosts_path}
        if host is not None:
            params["host"] = host
        if port is not None:
            params["port"] = port
        if identity_file is not None:
            params["identity_file"] = identity_file
        return self._connection.fetch(
            SshConfig, "GET", path_of("users", name, "ssh-config"), params=params
        )


class Keys(Resource):
    """/v1/users/{name}/keys: a user's SSH public keys (they reach every environment)."""

    def add(self, user: str, public_key: str) -> KeyAdded:
        """Add one public key line to a user."""
        body = {"public_key": public_key}
        return self._connection.fetch(KeyAdded, "POST", path_of("users", user, "keys"), body=body)

    def add_many(self, user: str, public_keys: Sequence[str]) -> list[KeyAdded]:
        """Add several public key lines to a user, all or none (a file of keys)."""
        body: dict[str, JsonValue] = {"public_keys": [str(key) for key in public_keys]}
        path = path_of("users", user, "keys", "batch")
        return self._connection.fetch_shape(_KEYS_ADDED, "POST", path, body=body)

    def remove(self, user: str, fingerprint: str) -> KeyRemoved:
        """Remove a public key by its SHA256 fingerprint."""
        path = path_of("users", user, "keys", fingerprint)
        return self._connection.fetch(KeyRemoved, "DELETE", path)
