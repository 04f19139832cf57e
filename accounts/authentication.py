"""API-key authentication for the REST API.

The key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>`; the original service had
no authentication, so this header is the only change its clients need.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from accounts import lookups
from accounts.models import ApiClient, hash_api_key
from flickrhub import sqlrows

# The client of an API key, read on every API request (flickrhub/sqlrows.py says why by hand).
_CLIENT = sqlrows.Join((ApiClient, "c"))
# It is kept for a moment in each process (accounts/lookups.py), by the key's hash.
CLIENTS = "api-clients"

# last_used_at is a hint for operators, not an audit log: writing it on every request would
# add a write to the hot path, so it is refreshed at most this often.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def _key_from(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    value = request.headers.get("X-API-Key", "").strip()
    return value or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiClient, None] | None:
        key = _key_from(request)
        if key is None:
            if request.headers.get("Authorization"):
                raise exceptions.AuthenticationFailed("The Authorization header must be 'Bearer <API key>'.")
            return None
        digest = hash_api_key(key)
        client = lookups.remembered(
            CLIENTS, digest, lambda: _CLIENT.first(_CLIENT.select() + ' WHERE c."key_hash" = %s', [digest])
        )
        if client is None or not client.is_active:
            raise exceptions.AuthenticationFailed("The API key is not valid or has been revoked.")
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > _LAST_USED_RESOLUTION:
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
            lookups.forget(CLIENTS, digest)  # else the copy kept would ask for the update again
        return client, None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="flickrhub"'


class IsApiClient(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, ApiClient)
