"""HTTP Basic authentication for the API (`--api-auth user:pass[,user2:pass2]`).

Every API route is protected: `/sdapi/*` and any route added to the FastAPI app directly (extension
routes), whenever they are added. Not protected: the mounted web UI (it has `--gradio-auth`),
`/internal/*` (the UI's own progress polling), and the OpenAPI pages.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from fastapi import FastAPI
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from modules.api.validation import error_response

PUBLIC_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json")
PUBLIC_PREFIXES = ("/internal/",)


def parse_credentials(value: str | None) -> list[tuple[str, str]]:
    """`user:pass,user2:pass2` (newlines also separate) → [(user, pass), ...]; entries without ':' are refused."""
    if not value:
        return []
    pairs = []
    for item in value.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        if ":" not in item:
            raise ValueError("--api-auth: expected user:password pairs separated by commas")
        user, password = item.split(":", 1)
        pairs.append((user, password))
    return pairs


def credentials_match(header: str | None, pairs: list[tuple[str, str]]) -> bool:
    """True when an `Authorization: Basic ...` header names one of `pairs` (constant-time comparison)."""
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    user, _, password = decoded.partition(":")
    matched = False
    for expected_user, expected_password in pairs:
        user_ok = secrets.compare_digest(user.encode(), expected_user.encode())
        password_ok = secrets.compare_digest(password.encode(), expected_password.encode())
        matched |= user_ok and password_ok
    return matched


class ApiAuthMiddleware:
    """ASGI middleware answering 401 with `WWW-Authenticate: Basic` for protected paths without valid credentials."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, pairs: list[tuple[str, str]]) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.pairs = pairs

    def is_protected(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return False
        if path.startswith("/sdapi/"):
            return True
        for route in self.fastapi_app.router.routes:
            if isinstance(route, Mount):
                continue
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.is_protected(scope):
            header = None
            for name, value in scope.get("headers", []):
                if name == b"authorization":
                    header = value.decode("latin-1")
            if not credentials_match(header, self.pairs):
                response = error_response(401, "Unauthorized", "Incorrect username or password")
                response.headers["WWW-Authenticate"] = "Basic"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_auth(app: FastAPI, api_auth: str | None) -> bool:
    """Protect the API when `--api-auth` is given; returns whether it did."""
    pairs = parse_credentials(api_auth)
    if not pairs:
        return False
    app.add_middleware(ApiAuthMiddleware, fastapi_app=app, pairs=pairs)
    return True
