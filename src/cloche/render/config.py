"""Pure: the text of /etc/cloche/config.yaml for a validated config."""

from __future__ import annotations

import yaml

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
