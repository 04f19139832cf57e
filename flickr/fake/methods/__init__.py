"""The REST methods the sandbox implements, registered by name in `REGISTRY`."""

from __future__ import annotations

from . import albums, diagnostics, people, photos, tickets, writes  # noqa: F401  (registration)
from .base import REGISTRY, ApiError, Call, Registered

__all__ = ["REGISTRY", "ApiError", "Call", "Registered"]
