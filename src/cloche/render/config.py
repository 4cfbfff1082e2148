"""Pure: the text of /etc/cloche/config.yaml for a validated config."""

from __future__ import annotations

import json

import yaml
from pydantic import BaseModel

from cloche.model.config import ClocheConfig

HEADER = """\
# cloche host configuration, written by 'cloche host init'.
# Every key is documented in docs/config.md; unknown keys and bad values are refused.
# Run 'cloche host init' again after editing: it validates, then converges the host.
"""


def render_config_yaml(config: ClocheConfig) -> str:
    """The config file's text: a header, then every key with its value."""
    body = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, default_flow_style=False)
    return HEADER + body


def _reference_rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_reference_rows(annotation, f"{prefix}{name}."))
            continue
        default = field.get_default(call_default_factory=True)
        shown = json.dumps(default) if default is not None else "(none)"
        rows.append(f"| `{prefix}{name}` | `{shown}` | {field.description or ''} |")
    return rows


def render_config_reference() -> str:
    """The key-by-key reference of the config file, as the Markdown table in docs/config.md."""
    lines = [
        "| key | default | meaning |",
        "| --- | --- | --- |",
        *_reference_rows(ClocheConfig, ""),
    ]
    return "\n".join(lines) + "\n"
