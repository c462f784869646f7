"""Who may call the server: loopback-only binding without keys, bearer keys, body limits."""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Request

from reasonrag.config import ServerConfig
from reasonrag.errors import ConfigError, PayloadTooLargeError, UnauthorizedError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_bind(host: str, cfg: ServerConfig) -> None:
    """Refuse to expose an open API: any address but loopback needs an API key."""
    if not cfg.api_keys and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without an API key: anyone who can reach it could "
            "read and change the index. Set server.api_keys (e.g. "
            """REASONRAG_SERVER__API_KEYS='["a-long-random-key"]') or bind to 127.0.0.1"""
        )


def key_checker(cfg: ServerConfig) -> Callable[[Request], None]:
    """A dependency that lets a request through only with ``Authorization: Bearer KEY``
    for a configured key (every request, when none is configured)."""
    keys = [key.get_secret_value().encode() for key in cfg.api_keys]

    def check(request: Request) -> None:
        if not keys:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        offered = given.strip().encode()
        # Every key is compared, so the time taken says nothing about which one was close.
        matches = [secrets.compare_digest(offered, key) for key in keys]
        if scheme.lower() != "bearer" or not any(matches):
            raise UnauthorizedError("missing or wrong API key (Authorization: Bearer KEY)")

    return check


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with HTTP 413, whether or not the client
    announced their length: the multipart parser would otherwise spool any size to disk
    before the upload route sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, self._error())
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise self._error()
            return message

        await self.app(scope, counted, send)

    def _error(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body over the limit of {self.max_bytes / 2**20:g} MiB (server.max_upload_mb)"
        )


async def _refuse(send: Send, exc: PayloadTooLargeError) -> None:
    body = json.dumps(error_body(exc)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_body(exc: Exception) -> dict[str, Any]:
    """The OpenAI error shape, which OpenAI clients turn into their exception types."""
    return {"error": {"message": str(exc), "type": type(exc).__name__}}
