"""The host's own surface: addresses banned for failing to sign in to its sshd."""

from __future__ import annotations

from cloche.client.connection import path_of
from cloche.client.resource import Resource
from cloche.model.bans import check_address
from cloche.wire import Ban


class Bans(Resource):
    """/v1/host/bans: addresses the host firewall drops after failed SSH sign-ins."""

    def list(self) -> list[Ban]:
        """The bans in force now, by address."""
        return self._connection.fetch_list(Ban, path_of("host", "bans"))

    def lift(self, address: str) -> Ban:
        """End an address's ban now (and forget its failures); NotFound if it is not banned."""
        # Checked here too: a line break cannot even travel in a URL path to get the daemon's word.
        path = path_of("host", "bans", check_address(address))
        return self._connection.fetch(Ban, "DELETE", path)
