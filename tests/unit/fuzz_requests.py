"""Requests for the API fuzz, read off the served OpenAPI document: plausible, hostile, malformed.

Every operation of the document becomes an Operation; each of its parameters (path, query,
header) and body fields draws from three pools: plausible values (names of things the seeded
world holds, so a request gets past its first lookup), values of the schema's type near its
bounds, and hostile values (fuzz_values.py). `sweep` lists them deterministically, one field at
a time; `requests` mixes them at random for hypothesis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from tests.unit.fuzz_values import (
    ABSENT,
    EXTRA_FIELD,
    HOSTILE_BY_FIELD,
    HOSTILE_HEADERS,
    HOSTILE_JSON,
    MALFORMED_BODIES,
    MISSING,
    NAMES_BY_PATH,
    NEW_NAMES,
    PLAUSIBLE,
    Known,
    Raw,
    hostile,
    more_hostile,
)
from tests.unit.fuzz_world import Seeded


@dataclass(frozen=True)
class Parameter:
    """One parameter of an operation and where it travels (path, query or header)."""

    name: str
    location: str


@dataclass(frozen=True)
class Operation:
    """One method on one path template, with its parameters and JSON body fields."""

    method: str
    path: str
    parameters: tuple[Parameter, ...]
    body_fields: Mapping[str, Mapping[str, Any]] | None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def names(self) -> list[str]:
        """Every parameter and body field name."""
        return [parameter.name for parameter in self.parameters] + list(self.body_fields or {})


@dataclass(frozen=True)
class Request:
    """What one fuzzed call sends: values may still be Known ids, Raw segments or ABSENT."""

    operation: Operation
    values: Mapping[str, Any]
    # Replaces the JSON body when set: bytes that are not the body the schema describes.
    content: bytes | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _body_schema(document: Mapping[str, Any], operation: Mapping[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None or "$ref" not in schema:
        return schema
    return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]


def operations(document: Mapping[str, Any]) -> list[Operation]:
    """Every operation the OpenAPI document serves."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            schema = _body_schema(document, operation)
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    parameters=tuple(
                        Parameter(p["name"], p["in"]) for p in operation.get("parameters", [])
                    ),
                    body_fields=None if schema is None else schema.get("properties", {}),
                )
            )
    return found


_OF_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "boolean": st.booleans(),
    "array": st.lists(st.text(max_size=20), max_size=3),
    "null": st.none(),
    "string": st.text(max_size=50),
}


def _typed(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the schema's own type, reaching just past its bounds."""
    if "anyOf" in schema:
        return st.one_of([_typed(option) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from([*schema["enum"], "Standard"])
    if schema.get("type") == "integer":
        low = int(schema.get("minimum", -(2**64)))
        high = int(schema.get("maximum", 2**64))
        return st.integers(low - 1, high + 1)
    return _OF_TYPE.get(str(schema.get("type")), _OF_TYPE["string"])


def _values(operation: Operation) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(name, location, schema) for every parameter and body field."""
    for parameter in operation.parameters:
        yield parameter.name, parameter.location, {}
    for name, schema in (operation.body_fields or {}).items():
        yield name, "body", schema


def plausible_values(operation: Operation, name: str) -> tuple[Any, ...]:
    """The plausible values of one parameter or field of operation."""
    if name == "name" and operation.method == "POST" and operation.path in NEW_NAMES:
        return NEW_NAMES[operation.path]
    if name == "name":
        for prefix, names in NAMES_BY_PATH:
            if operation.path.startswith(prefix):
                return names
    return PLAUSIBLE[name]


def _value_strategy(
    operation: Operation, name: str, location: str, schema: Mapping[str, Any]
) -> st.SearchStrategy[Any]:
    pools: list[st.SearchStrategy[Any]] = [
        st.sampled_from(plausible_values(operation, name)),
        st.sampled_from((*more_hostile(location), *HOSTILE_BY_FIELD.get(name, ()))),
    ]
    if location == "body":
        pools.append(_typed(schema))
    elif location != "header":
        pools.append(st.text(max_size=30))
    return st.one_of(pools)


@st.composite
def requests(draw: st.DrawFn, operation: Operation) -> Request:
    """A random request to operation: each value plausible, of its type, hostile or left out."""
    values: dict[str, Any] = {}
    for name, location, schema in _values(operation):
        optional = location != "path"
        if optional and draw(st.integers(0, 5)) == 0:
            values[name] = ABSENT
        else:
            values[name] = draw(_value_strategy(operation, name, location, schema))
    extra = {}
    content = None
    if operation.body_fields is not None:
        if draw(st.integers(0, 9)) == 0:
            extra = {EXTRA_FIELD: draw(st.sampled_from(HOSTILE_JSON))}
        if draw(st.integers(0, 14)) == 0:
            content = draw(st.sampled_from(MALFORMED_BODIES))
    return Request(operation, values, content, extra)


def plausible(operation: Operation) -> Request:
    """The request to operation made of each value's first plausible choice."""
    return Request(
        operation, {name: plausible_values(operation, name)[0] for name in operation.names()}
    )


def sweep(operation: Operation) -> Iterator[Request]:
    """The plausible request, then each value in turn hostile, left out or (bodies) malformed."""
    base = plausible(operation)
    yield base
    # Headers and left-out fields change nothing a lookup depends on; sent about a missing
    # target, they reach the audit log without changing the world (which would cost a restore).
    target = next((p.name for p in operation.parameters if p.location == "path"), None)
    quiet = base if target is None else replace(base, values={**base.values, target: MISSING})
    for name, location, schema in _values(operation):
        unwelcome = (*hostile(location, schema), *HOSTILE_BY_FIELD.get(name, ()))
        for value in (*unwelcome, *plausible_values(operation, name)[1:]):
            yield replace(base, values={**base.values, name: value})
        if location == "header":
            for value in HOSTILE_HEADERS:
                yield replace(quiet, values={**quiet.values, name: value})
        elif location != "path":
            yield replace(quiet, values={**quiet.values, name: ABSENT})
    if operation.body_fields is not None:
        for content in MALFORMED_BODIES:
            yield replace(base, content=content)
        yield replace(base, extra={EXTRA_FIELD: 1})


def _resolve(value: Any, seeded: Seeded) -> Any:
    return getattr(seeded, value.value) if isinstance(value, Known) else value


def _encoded(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value)
    # A lone surrogate goes out as the bytes it would be, which are not UTF-8.
    return quote(text, safe="", errors="surrogatepass")


@dataclass(frozen=True)
class Wire:
    """A request as httpx sends it."""

    method: str
    url: str
    headers: dict[str, Any]
    content: bytes | None

    def describe(self) -> str:
        """The request in one line for a failure message."""
        body = None if self.content is None else self.content[:300]
        return f"{self.method} {self.url[:300]} body={body!r}"


URL_PART_LIMIT = 16_000


def to_wire(request: Request, seeded: Seeded) -> Wire:
    """The URL, query, headers and body bytes of a request, its Known ids looked up."""
    operation = request.operation
    values = {name: _resolve(value, seeded) for name, value in request.values.items()}
    url = operation.path
    query: list[str] = []
    headers: dict[str, Any] = {}
    for parameter in operation.parameters:
        value = values[parameter.name]
        if parameter.location == "path":
            # httpx refuses a URL over 64 KiB, so three 50 000-character values must share it.
            url = url.replace(f"{{{parameter.name}}}", _encoded(value)[:URL_PART_LIMIT])
        elif value is ABSENT or value is None:
            continue
        elif parameter.location == "query":
            query.append(f"{parameter.name}={_encoded(value)[:URL_PART_LIMIT]}")
        else:
            headers[parameter.name] = value
    if query:
        url = f"{url}?{'&'.join(query)}"
    content = request.content
    if operation.body_fields is not None and content is None:
        body = {name: values[name] for name in operation.body_fields if values[name] is not ABSENT}
        # Lone surrogates travel as JSON escapes, as a hostile client would send them.
        content = json.dumps({**body, **request.extra}).encode()
    if content is not None:
        headers["Content-Type"] = "application/json"
    return Wire(operation.method, url, headers, content)


def missing_plausible(found: Sequence[Operation]) -> list[str]:
    """Parameter and field names with no plausible values (a new route needs some)."""
    return sorted({name for operation in found for name in operation.names()} - set(PLAUSIBLE))
