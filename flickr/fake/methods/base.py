"""What every method handler gets (a `Call`) and how it fails (`ApiError`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..catalog import Catalog, MethodInfo
from ..models import AccessToken, Photo, User
from ..rsp import Node
from ..state import SandboxState


class ApiError(Exception):
    """An in-band `stat=fail` answer with one of the method's own codes (§2.3)."""

    def __init__(self, code: int, message: str, extra: list[Node] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.extra = extra or []


@dataclass
class Call:
    state: SandboxState
    catalog: Catalog
    info: MethodInfo
    args: dict[str, str]
    token: AccessToken | None
    pairs: list[tuple[str, str]] = field(default_factory=list)  # every query/form parameter
    options: dict[str, int] = field(default_factory=dict)  # sandbox knobs, e.g. search_cap

    @property
    def viewer(self) -> str | None:
        """The NSID of the person calling, or None for anonymous calls."""
        return self.token.nsid if self.token else None

    def fail(self, code: int, message: str | None = None) -> ApiError:
        if message is None:
            known = self.info.error(code) or self.catalog.universal.get(code)
            message = known.message if known else "Unknown error"
        return ApiError(code, message)

    def arg(self, name: str, default: str = "") -> str:
        return self.args.get(name, default).strip()

    def int_arg(self, name: str, default: int) -> int:
        try:
            return int(self.arg(name))
        except ValueError:
            return default

    def user_arg(self, name: str, code: int, *, default_to_viewer: bool = False) -> User:
        """Resolve a user_id argument; "me" means the caller (§5.3 photos.search text)."""
        value = self.arg(name)
        if value == "me" or (value == "" and default_to_viewer):
            value = self.viewer or ""
        user = self.state.user(value)
        if user is None:
            raise self.fail(code)
        return user

    def visible_photo(self, name: str = "photo_id", code: int = 1) -> Photo:
        photo = self.state.library.photos.get(self.arg(name))
        if photo is None or not self.state.can_see(self.viewer, photo):
            # Flickr does not tell "private" from "missing": both are "Photo not found".
            raise self.fail(code)
        return photo

    def own_photo(self, name: str = "photo_id", code: int = 1) -> Photo:
        photo = self.state.library.photos.get(self.arg(name))
        if photo is None or photo.owner != self.viewer:
            raise self.fail(code)
        return photo


Handler = Callable[[Call], list[Node]]


@dataclass(frozen=True)
class Registered:
    handler: Handler
    # Replaces the catalog's required arguments where the 2015 reflection data is stricter
    # than Flickr is today (e.g. people.getInfo lists both user_id and url as required).
    requires: tuple[str, ...] | None = None


REGISTRY: dict[str, Registered] = {}


def method(name: str, *, requires: tuple[str, ...] | None = None) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        REGISTRY[name] = Registered(handler, requires)
        return handler

    return register
