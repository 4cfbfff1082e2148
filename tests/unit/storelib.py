"""What the store's unit tests share: a user's quotas and an environment's fields."""

from __future__ import annotations

from typing import Any

GIB = 1024**3
QUOTAS: dict[str, Any] = {"max_envs": 3, "cpu": 4, "memory_bytes": 8 * GIB, "disk_bytes": 50 * GIB}
ENVIRONMENT: dict[str, Any] = {
    "image": "debian-12",
    "profile": "standard",
    "cpu": 2,
    "memory_bytes": 2 * GIB,
    "disk_bytes": 10 * GIB,
    "processes": 2000,
}
