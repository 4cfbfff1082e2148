"""The base of every wire model: a field the model does not describe is an error, both ways."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A JSON body of the cloche API; unknown fields are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
