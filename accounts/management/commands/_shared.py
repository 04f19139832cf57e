"""What the account commands share."""

from __future__ import annotations

from django.core.management.base import CommandError

from accounts.models import ApiClient


def client_named(name: str | None) -> ApiClient:
    """The active client called `name`; without a name, the only active client there is."""
    clients = ApiClient.objects.filter(is_active=True)
    if name:
        client = clients.filter(name=name).first()
        if client is None:
            known = ", ".join(clients.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No active API client named {name!r} (active clients: {known}).")
        return client
    found = list(clients[:2])
    if len(found) == 1:
        return found[0]
    if not found:
        raise CommandError("There is no API client yet: create one with `manage.py create_api_client NAME`.")
    names = ", ".join(clients.values_list("name", flat=True))
    raise CommandError(f"Say which client with --client NAME (active clients: {names}).")
