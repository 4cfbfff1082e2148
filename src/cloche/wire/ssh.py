"""GET /v1/users/{name}/ssh-config: the files that reach a user's environments by name."""

from __future__ import annotations

from cloche.wire.base import WireModel


class SshConfig(WireModel):
    """The ssh_config text (ProxyJump through the host) and the known_hosts text it pins."""

    config: str
    known_hosts: str
