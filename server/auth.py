"""Bearer-token authentication, checked in one interceptor before any handler runs.

Tokens come from a file (one per line, ``#`` comments and blank lines ignored) and/or
an environment variable (comma-separated). A call must send ``authorization: Bearer
<token>``; anything else gets UNAUTHENTICATED and never reaches the servicer (so never
the solver). Tokens are compared in constant time (``hmac.compare_digest`` against every
configured token, without stopping at the first match) and never logged: the log says
only that a call was refused and why (missing or wrong), with the method.

Health checking (``grpc.health.v1.Health``) stays open by default so that load
balancers and orchestrators can probe without a secret; ``auth_health`` closes it too.
Server reflection is protected like the placement service (it describes the API).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from placement.core.errors import FieldError, InputError
from server.errors import Unauthenticated

log = logging.getLogger(__name__)

HEALTH_PREFIX = "/grpc.health.v1.Health/"


def load_tokens(tokens_file: str = "", tokens_env: str = "") -> tuple[bytes, ...]:
    """Every configured token, as bytes. Raises ``InputError`` (without the tokens) when none is found."""
    tokens: list[str] = []
    if tokens_file:
        try:
            lines = Path(tokens_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(
                [FieldError("tokens_file", f"cannot read {tokens_file}: {type(e).__name__}")]
            ) from e
        tokens += [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if tokens_env:
        tokens += [t.strip() for t in os.environ.get(tokens_env, "").split(",") if t.strip()]
    if not tokens:
        where = " and ".join(
            x for x in (tokens_file and f"file {tokens_file}", tokens_env and f"${tokens_env}") if x
        )
        raise InputError([FieldError("tokens", f"authentication is on but no token was found in {where}")])
    return tuple(t.encode() for t in tokens)


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses every call without a valid bearer token (health exempt unless ``protect_health``)."""

    def __init__(self, tokens: tuple[bytes, ...], protect_health: bool = False) -> None:
        if not tokens:
            raise ValueError("AuthInterceptor needs at least one token")
        self._tokens = tokens
        self._protect_health = protect_health

    def __repr__(self) -> str:  # never the tokens
        return f"AuthInterceptor({len(self._tokens)} tokens, protect_health={self._protect_health})"

    def _valid(self, presented: bytes) -> bool:
        ok = False
        for token in self._tokens:  # no early exit: time does not depend on which token matched
            ok |= hmac.compare_digest(presented, token)
        return ok

    def check(self, metadata: tuple[tuple[str, Any], ...] | None) -> str:
        """'' when the metadata carries a valid token, else why not (without the token)."""
        values = [v for k, v in metadata or () if k.lower() == "authorization"]
        if not values:
            return "no authorization metadata"
        value = values[0] if isinstance(values[0], bytes) else str(values[0]).encode()
        scheme, _, token = value.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return "authorization is not 'Bearer <token>'"
        return "" if self._valid(token.strip()) else "invalid token"

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method.startswith(HEALTH_PREFIX) and not self._protect_health:
            return continuation(handler_call_details)
        why = self.check(handler_call_details.invocation_metadata)  # type: ignore[arg-type]
        if not why:
            return continuation(handler_call_details)
        log.info("refused %s: %s", method, why)
        handler = continuation(handler_call_details)
        if handler is None:
            return None

        def refuse(request: Any, context: grpc.ServicerContext) -> Any:
            raise Unauthenticated(f"{why}: send 'authorization: Bearer <token>'")

        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(refuse, **kw)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(refuse, **kw)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(refuse, **kw)
        return grpc.stream_stream_rpc_method_handler(refuse, **kw)
