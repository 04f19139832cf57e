"""OAuth 1.0a request parsing and HMAC-SHA1 verification, done by oauthlib.

Flickr accepts the oauth_* parameters in the `Authorization: OAuth` header, the query string
or a form body (FLICKR-API.md §1.1), signs every query/form parameter except an upload's
`photo` part (§1.6, §3.1), and answers a bad signature with HTTP 401
`oauth_problem=signature_invalid&debug_sbs=...` on every endpoint, REST included (§1.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from oauthlib.common import safe_string_equals
from oauthlib.oauth1.rfc5849 import signature, utils
from werkzeug import Request, Response

from .models import Consumer
from .state import NONCE_WINDOW_SECONDS, SandboxState

OAUTH_CONTENT_TYPE = "text/plain;charset=UTF-8"  # as captured from Flickr in 2025 (§1.5)


class OAuthProblem(Exception):
    """An OAuth failure: HTTP 401 with a form-encoded `oauth_problem=...` body."""

    def __init__(self, problem: str, **extra: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.extra = extra

    def response(self) -> Response:
        parts = [f"oauth_problem={quote(self.problem, safe='')}"]
        for name, value in self.extra.items():
            # Flickr prints debug_sbs raw, percent signs and all (DPZFlickr #11 capture).
            parts.append(f"{name}={value if name == 'debug_sbs' else quote(value, safe='')}")
        return Response("&".join(parts), status=401, content_type=OAUTH_CONTENT_TYPE)


@dataclass
class _SigningClient:
    """The two attributes oauthlib's sign_hmac_sha1_with_client reads."""

    client_secret: str
    resource_owner_secret: str


@dataclass
class Incoming:
    """One request to /services/*, its parameters gathered once from every place they can be."""

    request: Request
    pairs: list[tuple[str, str]]  # query + form fields, decoded, in order; never file parts
    header: str | None  # the `Authorization: OAuth ...` header, if any
    oauth: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, request: Request, *, unsigned_fields: tuple[str, ...] = ()) -> Incoming:
        pairs = list(request.args.items(multi=True))
        if request.method in ("POST", "PUT"):
            pairs += [(k, v) for k, v in request.form.items(multi=True) if k not in unsigned_fields]
        header = request.headers.get("Authorization")
        if header is not None and not header.lower().startswith("oauth "):
            header = None
        oauth: dict[str, str] = {}
        for name, value in pairs:
            if name.startswith("oauth_"):
                oauth.setdefault(name, value)
        if header is not None:
            try:
                for name, value in utils.parse_authorization_header(header):
                    if name.startswith("oauth_"):
                        oauth[name] = utils.unescape(value)
            except ValueError:
                header = None
        return cls(request=request, pairs=pairs, header=header, oauth=oauth)

    def arg(self, name: str) -> str | None:
        return next((v for k, v in self.pairs if k == name), None)

    @property
    def args(self) -> dict[str, str]:
        """Method arguments: every non-OAuth parameter, first value wins."""
        out: dict[str, str] = {}
        for name, value in self.pairs:
            if not name.startswith("oauth_"):
                out.setdefault(name, value)
        return out

    @property
    def signed(self) -> bool:
        return "oauth_signature" in self.oauth

    @property
    def consumer_key(self) -> str | None:
        if self.signed:
            return self.oauth.get("oauth_consumer_key")
        return self.arg("api_key") or self.oauth.get("oauth_consumer_key")

    @property
    def token(self) -> str | None:
        return self.oauth.get("oauth_token") or None

    @property
    def base_url(self) -> str:
        # What the client signed: scheme, the Host it dialled and the path, no query (§1.6).
        return f"{self.request.scheme}://{self.request.host}{self.request.path}"

    def signature_base_string(self) -> str:
        # Query and form pairs go in as one already-decoded list; oauthlib treats them the
        # same way it treats a decoded query string, so the normalisation is its own.
        headers = {"Authorization": self.header} if self.header else None
        params = signature.collect_parameters(body=self.pairs, headers=headers)
        return signature.signature_base_string(
            self.request.method,
            signature.base_string_uri(self.base_url),
            signature.normalize_parameters(params),
        )


def verify(incoming: Incoming, state: SandboxState, consumer: Consumer, token_secret: str = "") -> None:
    """Check an OAuth-signed request: method, signature, timestamp, then nonce.

    The nonce is recorded only after the signature holds, so forged requests cannot burn
    nonces of the real client.
    """
    method = incoming.oauth.get("oauth_signature_method", "")
    if method != "HMAC-SHA1":
        # "Currently, Flickr only supports HMAC-SHA1 signature encryption." (§1.6)
        raise OAuthProblem("signature_method_rejected")
    sbs = incoming.signature_base_string()
    expected = signature.sign_hmac_sha1_with_client(sbs, _SigningClient(consumer.secret, token_secret))
    if not safe_string_equals(expected, incoming.oauth.get("oauth_signature", "")):
        raise OAuthProblem("signature_invalid", debug_sbs=sbs)
    timestamp = incoming.oauth.get("oauth_timestamp", "")
    now = state.clock()
    if not timestamp.isdigit() or abs(int(timestamp) - now) > NONCE_WINDOW_SECONDS:
        low, high = int(now) - NONCE_WINDOW_SECONDS, int(now) + NONCE_WINDOW_SECONDS
        raise OAuthProblem("timestamp_refused", oauth_acceptable_timestamps=f"{low}-{high}")
    if not state.use_nonce(consumer.key, timestamp, incoming.oauth.get("oauth_nonce", "")):
        raise OAuthProblem("nonce_used")
