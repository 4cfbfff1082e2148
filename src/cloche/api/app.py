"""The daemon's HTTP API: routes that translate requests into core use cases, errors mapped once."""

from __future__ import annotations

import functools

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloche import __version__, wire
from cloche.api import mapping
from cloche.api.authorization import Authenticate, Caller, authorization, caller_authenticator
from cloche.api.backup_routes import register_backup_routes
from cloche.api.body_limit import DEFAULT_LIMIT, BodyLimit
from cloche.api.environment_routes import register_environment_routes
from cloche.api.host_routes import register_host_routes
from cloche.api.network_routes import register_network_routes
from cloche.api.route_routes import register_route_routes
from cloche.api.schemas import errors
from cloche.api.snapshot_routes import register_snapshot_routes
from cloche.api.token_routes import register_token_routes
from cloche.api.user_routes import register_user_routes
from cloche.core.context import Context
from cloche.core.identity import principal_of_peer
from cloche.core.tokens import principal_of_secret
from cloche.model.build import code_fingerprint, config_fingerprint
from cloche.model.errors import ClocheError, NotFound
from cloche.model.errors_wire import error_body
from cloche.model.names import no_such_operation
from cloche.model.principals import operation_owner


def _validation_sentence(error: RequestValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"] if part != "body")
    message = str(first["msg"]).removeprefix("Value error, ").rstrip(".")
    return f"{location or 'request'}: {message}; fix the request and retry."


def create_app(
    context: Context, authenticate: Authenticate | None = None, *, body_limit: int = DEFAULT_LIMIT
) -> FastAPI:
    """The FastAPI app serving one daemon context; callers identified by authenticate.

    By default a caller is the host account on the other end of the unix socket. Request bodies
    over body_limit are refused.
    """
    if authenticate is None:
        authenticate = caller_authenticator(
            functools.partial(principal_of_peer, context),
            functools.partial(principal_of_secret, context),
        )
    app = FastAPI(
        title="cloche",
        version=__version__,
        docs_url="/docs",
        openapi_url="/openapi.json",
        dependencies=[Depends(authorization(authenticate))],
    )
    app.add_middleware(BodyLimit, limit=body_limit)

    @app.exception_handler(ClocheError)
    async def cloche_error(_: Request, error: ClocheError) -> JSONResponse:
        return JSONResponse(status_code=error.http_status, content=error_body(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        body = wire.ErrorBody(error="Invalid", message=_validation_sentence(error))
        return JSONResponse(status_code=422, content=body.model_dump())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = (
            f"{request.method} {request.url.path} is not part of the cloche API; check the "
            "names in the request (user and environment names are plain words)."
            if error.status_code in (404, 405)
            else f"{error.detail}."
        )
        body = wire.ErrorBody(
            error="NotFound" if error.status_code == 404 else "Invalid", message=message
        )
        return JSONResponse(status_code=error.status_code, content=body.model_dump())

    @app.get("/v1/health", responses=errors())
    def health() -> wire.Health:
        # "config" lets 'host init' restart a daemon whose config file changed since it started.
        return wire.Health(
            version=__version__,
            status="ok",
            code=code_fingerprint(),
            config=config_fingerprint(context.config),
            address_mismatches=list(context.address_mismatches),
        )

    @app.get("/v1/operations/{operation_id}", responses=errors(404, 422))
    def operation(operation_id: str, principal: Caller) -> wire.Operation:
        record = context.operations.get(operation_id)
        if not principal.is_admin and operation_owner(record.target) != principal.user:
            # The same answer as an unknown id, so ids of other tenants' operations don't leak.
            raise NotFound(no_such_operation(operation_id))
        return mapping.operation(record)

    @app.get("/v1/audit", responses=errors(422))
    def audit(limit: int = 50) -> list[wire.AuditEvent]:
        return [mapping.audit_event(event) for event in context.audit.read(limit=limit)]

    @app.get("/v1/audit/verify", responses=errors())
    def audit_verify() -> wire.AuditVerification:
        return mapping.audit_verification(context.audit.verify())

    register_user_routes(app, context)
    register_environment_routes(app, context)
    register_backup_routes(app, context)
    register_snapshot_routes(app, context)
    register_network_routes(app, context)
    register_route_routes(app, context)
    register_token_routes(app, context)
    register_host_routes(app, context)
    return app
