"""Shared, lock-guarded state of one sandbox: apps, tokens, nonces, tickets, the library.

The sandbox is served by a threaded server and hammered by benchmark workers, so every
read-modify-write goes through `self.lock` (an RLock, so helpers can nest).
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .catalog import PERMS
from .library import Library, build_library
from .models import AccessToken, Consumer, Photo, RequestToken, Ticket, User

# The sandbox's own registered app, present in every FakeFlickr. Shaped like Flickr's
# 32-hex key / 16-hex secret. Public test credentials: they unlock nothing but a sandbox.
SANDBOX_CONSUMER_KEY = "5a1b0c9e7d3f4e2a8b6c0d1e2f3a4b5c"
SANDBOX_CONSUMER_SECRET = "9f8e7d6c5b4a3210"  # noqa: S105 (public sandbox test credential)
SANDBOX_APP_NAME = "FlickrHub (sandbox)"

NONCE_WINDOW_SECONDS = 300


class StateError(ValueError):
    """A test helper was asked for something that does not exist (unknown user, token...)."""


class SandboxState:
    def __init__(
        self,
        seed: int = 1,
        *,
        clock: Callable[[], float],
        request_token_ttl: float = 600.0,
        upload_limit: int = 1000,
        photos_per_user: tuple[int, int] = (30, 60),
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.request_token_ttl = request_token_ttl
        self.lock = threading.RLock()
        self.rng = random.Random(f"tokens:{seed}")
        self.library: Library = build_library(seed, photos_per_user)
        for user in self.library.users:
            user.upload_limit = upload_limit
        self.consumers: dict[str, Consumer] = {}
        self.request_tokens: dict[str, RequestToken] = {}
        self._prune_request_tokens_at = 1000
        self.access_tokens: dict[str, AccessToken] = {}
        self.tickets: dict[str, Ticket] = {}
        # sha1 of file content -> photo id, per owner, for upload dedup_check (§3.1)
        self.hashes: dict[str, dict[str, str]] = {u.nsid: {} for u in self.library.users}
        self._nonces: set[tuple[str, str, str]] = set()
        self._nonce_order: deque[tuple[float, tuple[str, str, str]]] = deque()
        self._next_ticket = self.rng.randint(100_000, 900_000)
        self.add_consumer(SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, name=SANDBOX_APP_NAME)

    # ------------------------------------------------------------ people

    @property
    def users(self) -> list[User]:
        return self.library.users

    @property
    def demo_user(self) -> User:
        return self.library.users[0]

    def user(self, nsid: str | None) -> User | None:
        return next((u for u in self.library.users if u.nsid == nsid), None)

    def user_by_name(self, username: str) -> User | None:
        return next((u for u in self.library.users if u.username == username), None)

    def set_upload_limit(self, nsid: str, limit: int) -> None:
        with self.lock:
            self._require_user(nsid).upload_limit = limit

    def _require_user(self, nsid: str) -> User:
        user = self.user(nsid)
        if user is None:
            raise StateError(f"no seeded user {nsid!r}")
        return user

    # ------------------------------------------------------------ apps

    def add_consumer(self, key: str, secret: str, name: str = "An app") -> None:
        with self.lock:
            self.consumers[key] = Consumer(key=key, secret=secret, name=name)

    def consumer(self, key: str | None) -> Consumer | None:
        return self.consumers.get(key or "")

    def expire_key(self, key: str) -> None:
        """What Flickr does to an abusive app: later calls answer 100 "Key has expired" (§4.2)."""
        with self.lock:
            consumer = self.consumers.get(key)
            if consumer is None:
                raise StateError(f"unknown consumer key {key!r}")
            consumer.expired = True

    def restore_key(self, key: str) -> None:
        with self.lock:
            consumer = self.consumers.get(key)
            if consumer is not None:
                consumer.expired = False

    # ------------------------------------------------------------ tokens

    def _token_pair(self) -> tuple[str, str]:
        # Flickr's shapes (§1.2): "<17 digits>-<16 hex>" and a 16-hex secret.
        digits = "72157" + "".join(self.rng.choice("0123456789") for _ in range(12))
        return f"{digits}-{self._hex(16)}", self._hex(16)

    def _hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def issue_request_token(self, consumer_key: str, callback: str) -> RequestToken:
        with self.lock:
            if len(self.request_tokens) >= self._prune_request_tokens_at:
                self._forget_dead_request_tokens()
            token, secret = self._token_pair()
            rt = RequestToken(token, secret, consumer_key, callback, created=self.clock())
            self.request_tokens[token] = rt
            return rt

    def _forget_dead_request_tokens(self) -> None:
        # Pending tokens are never called back when people cancel (§1.3); don't hoard them.
        self.request_tokens = {
            t: rt
            for t, rt in self.request_tokens.items()
            if not rt.used and self.clock() - rt.created <= self.request_token_ttl
        }
        self._prune_request_tokens_at = max(1000, 2 * len(self.request_tokens))

    def live_request_token(self, token: str | None) -> RequestToken | None:
        """A request token that can still be authorised or exchanged: not used, not expired."""
        rt = self.request_tokens.get(token or "")
        if rt is None or rt.used or self.clock() - rt.created > self.request_token_ttl:
            return None
        return rt

    def approve(self, request_token: str, nsid: str, perms: str) -> str:
        """What the authorize page does when a person approves; returns the verifier."""
        if perms not in PERMS[1:]:
            raise StateError(f"perms must be read, write or delete, not {perms!r}")
        with self.lock:
            rt = self.live_request_token(request_token)
            if rt is None:
                raise StateError("request token unknown, used or expired")
            self._require_user(nsid)
            rt.nsid, rt.perms, rt.denied = nsid, perms, False
            if rt.callback == "oob":
                # Out-of-band verifiers are 9 digits shown as 123-456-789 (flickcurl docs, §1.3).
                digits = "".join(self.rng.choice("0123456789") for _ in range(9))
                rt.verifier = f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
            else:
                rt.verifier = self._hex(16)
            return rt.verifier

    def deny(self, request_token: str) -> None:
        with self.lock:
            rt = self.request_tokens.get(request_token)
            if rt is not None:
                rt.denied, rt.verifier = True, None

    def exchange(self, rt: RequestToken, verifier: str) -> AccessToken | None:
        """Trade an approved request token + verifier for an access token, once."""
        with self.lock:
            if rt.used or rt.denied or rt.verifier is None or rt.nsid is None:
                return None
            if not _same_verifier(rt.verifier, verifier):
                return None
            rt.used = True
            return self.mint_access_token(rt.consumer_key, rt.nsid, rt.perms or "read")

    def issue_access_token(
        self, *, consumer_key: str = SANDBOX_CONSUMER_KEY, nsid: str | None = None, perms: str
    ) -> tuple[str, str]:
        """Mint an access token for a seeded user (the demo user by default)."""
        record = self.mint_access_token(consumer_key, nsid, perms)
        return record.token, record.secret

    def mint_access_token(self, consumer_key: str, nsid: str | None, perms: str) -> AccessToken:
        if perms not in PERMS[1:]:
            raise StateError(f"perms must be read, write or delete, not {perms!r}")
        with self.lock:
            if consumer_key not in self.consumers:
                raise StateError(f"unknown consumer key {consumer_key!r}")
            user = self._require_user(nsid) if nsid else self.demo_user
            token, secret = self._token_pair()
            record = AccessToken(token, secret, consumer_key, user.nsid, perms)
            self.access_tokens[token] = record
            return record

    def demo_token(self, perms: str = "delete") -> tuple[str, str, str]:
        """The demo user's token for the sandbox app: the same values on every run of a seed."""
        if perms not in PERMS[1:]:
            raise StateError(f"perms must be read, write or delete, not {perms!r}")
        digest = hashlib.sha256(f"demo-token:{self.seed}:{perms}".encode()).hexdigest()
        digits = "72157" + str(int(digest[:16], 16))[-12:].rjust(12, "0")
        token, secret = f"{digits}-{digest[16:32]}", digest[32:48]
        nsid = self.demo_user.nsid
        with self.lock:
            if token not in self.access_tokens:
                self.access_tokens[token] = AccessToken(token, secret, SANDBOX_CONSUMER_KEY, nsid, perms)
        return token, secret, nsid

    def revoke_token(self, token: str) -> None:
        """The person removed the app: later REST calls with the token answer 98 (§1.4)."""
        with self.lock:
            record = self.access_tokens.get(token)
            if record is None:
                raise StateError("unknown access token")
            record.revoked = True

    def access_token(self, token: str | None) -> AccessToken | None:
        return self.access_tokens.get(token or "")

    # ------------------------------------------------------------ nonces

    def use_nonce(self, consumer_key: str, timestamp: str, nonce: str) -> bool:
        """Remember a nonce; False when this key already used it with this timestamp."""
        now = self.clock()
        key = (consumer_key, timestamp, nonce)
        with self.lock:
            # Timestamps older than the window are refused anyway, so their nonces can go.
            horizon = now - 2 * NONCE_WINDOW_SECONDS
            while self._nonce_order and self._nonce_order[0][0] < horizon:
                self._nonces.discard(self._nonce_order.popleft()[1])
            if key in self._nonces:
                return False
            self._nonces.add(key)
            self._nonce_order.append((now, key))
            return True

    # ------------------------------------------------------------ library helpers

    def can_see(self, viewer: str | None, photo: Photo) -> bool:
        """Flickr's privacy rule: owners see everything, contacts see what they're allowed."""
        if photo.ispublic or viewer == photo.owner:
            return True
        if viewer is None:
            return False
        owner = self.user(photo.owner)
        if owner is None:
            return False
        return bool(
            (photo.isfriend and viewer in owner.friends) or (photo.isfamily and viewer in owner.family)
        )

    def new_photo_id(self) -> str:
        with self.lock:
            self.library.next_photo_id += self.rng.randint(1_000, 900_000)
            return str(self.library.next_photo_id)

    def new_set_id(self) -> str:
        with self.lock:
            self.library.next_set_id += self.rng.randint(3, 900)
            return str(self.library.next_set_id)

    def new_ticket(self, photo_id: str | None, complete: int) -> Ticket:
        with self.lock:
            self._next_ticket += self.rng.randint(1, 50)
            ticket = Ticket(str(self._next_ticket), photo_id, complete, self.clock())
            self.tickets[ticket.id] = ticket
            return ticket

    def secret(self) -> str:
        with self.lock:
            return self._hex(10)


def _same_verifier(expected: str, given: str) -> bool:
    # People type the out-of-band code with or without its dashes.
    return expected == given or expected.replace("-", "") == given.replace("-", "").strip()


def with_query(url: str, **params: str) -> str:
    """Add parameters to a callback URL, keeping any query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
