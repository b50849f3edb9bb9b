"""Websocket handshake authentication: a Bearer JWT in the Authorization header, else the
session cookie (Channels' AuthMiddlewareStack). Never a token in the query string."""

from channels.auth import AuthMiddlewareStack
from django.contrib.auth.models import AnonymousUser

from realio.asyncdb import db as database_sync_to_async


@database_sync_to_async
def _user_for_token(raw):
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError

    auth = JWTAuthentication()
    try:
        token = auth.get_validated_token(raw)
        user = auth.get_user(token)
    except (InvalidToken, TokenError, AuthenticationFailed):
        return None
    return user if user.is_active else None


class JWTHeaderMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        value = headers.get(b"authorization", b"").decode("latin-1")
        if value.lower().startswith("bearer "):
            user = await _user_for_token(value[7:].strip())
            # A bad token is refused outright rather than falling back to the cookie.
            scope = {**scope, "user": user or AnonymousUser()}
        return await self.inner(scope, receive, send)


def SessionOrJWTAuthMiddleware(inner):  # noqa: N802 (a middleware factory, named like one)
    return AuthMiddlewareStack(JWTHeaderMiddleware(inner))
