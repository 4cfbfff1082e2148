"""cloche's state database: the one object the daemon opens, its aggregates as attributes.

`database.users`, `.environments`, `.routes`, `.operations`, `.bans`, `.audit_head` and `.tokens`
share one engine (store/engine.py: a connection per thread, one transaction per call, the
schema migrations).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from cloche.store.audit_head import AuditHeadStore
from cloche.store.bans import BanStore
from cloche.store.engine import MIGRATIONS, Engine, utc_now
from cloche.store.environments import EnvironmentStore
from cloche.store.operations import OperationStore
from cloche.store.routes import RouteStore
from cloche.store.tokens import TokenStore
from cloche.store.users import UserStore


class Database:
    """cloche's state database: open it, migrate() it, then use its aggregates."""

    def __init__(
        self,
        path: Path,
        *,
        migrations: Sequence[str] = MIGRATIONS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = Engine(path, migrations=migrations, clock=clock)
        self.path = self.engine.path
        self.users = UserStore(self.engine)
        self.environments = EnvironmentStore(self.engine)
        self.routes = RouteStore(self.engine)
        self.operations = OperationStore(self.engine)
        self.bans = BanStore(self.engine)
        self.audit_head = AuditHeadStore(self.engine)
        self.tokens = TokenStore(self.engine)

    @property
    def latest_version(self) -> int:
        """The schema version this code migrates to."""
        return self.engine.latest_version

    def schema_version(self) -> int:
        """The number of migrations applied to this database (0 for a new file)."""
        return self.engine.schema_version()

    def migrate(self, up_to: int | None = None) -> int:
        """Apply the missing migrations up to up_to (default: all), one transaction each."""
        return self.engine.migrate(up_to)

    def close(self) -> None:
        """Close every thread's connection; the object cannot be used afterwards."""
        self.engine.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
