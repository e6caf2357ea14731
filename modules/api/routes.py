"""A1111's `/sdapi/v1/*` HTTP API: puts the routers, error handlers, auth and OpenAPI schemas together.

The routes live in small modules: `routes_generation` (txt2img, extras, png-info), `routes_info`
(settings, lists, refreshes, server control), `progress` (progress, interrupt, skip). Request and
response fields use A1111's names.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from modules.api.auth import install_auth
from modules.api.progress import create_progress_router
from modules.api.routes_generation import create_generation_router
from modules.api.routes_info import create_info_router
from modules.api.schemas import request_component_schemas
from modules.api.validation import ApiError, error_response
from modules.app.context import AppContext

log = logging.getLogger(__name__)


def create_api(context: AppContext) -> APIRouter:
    """Every API route bound to one app context."""
    router = APIRouter()
    router.include_router(create_generation_router(context))
    router.include_router(create_info_router(context))
    router.include_router(create_progress_router(context))
    try:
        # img2img comes from its own module, which may not be present in every build.
        from modules.api.img2img_route import create_img2img_router
    except ImportError:
        pass
    else:
        router.include_router(create_img2img_router(context))
    return router


def _add_request_schemas(app: FastAPI) -> None:
    """Routes that read their own JSON body reference request models; put them into the OpenAPI components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(request_component_schemas())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_api(app: FastAPI, context: AppContext) -> None:
    """Add the routes, `--api-auth`, and handlers that turn errors into A1111-shaped JSON (the server stays up)."""
    app.include_router(create_api(context))
    _add_request_schemas(app)
    install_auth(app, getattr(context.flags, "api_auth", None))

    @app.exception_handler(ApiError)
    async def refused(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.error, error.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(part) for part in item['loc'] if part != 'body')}: {item['msg']}" for item in error.errors())
        return error_response(422, "ValidationError", detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("API error on %s", request.url.path)
        return error_response(500, type(error).__name__, str(error))
