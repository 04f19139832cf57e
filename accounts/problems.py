"""Everything that can go wrong while linking a Flickr account, said once for every channel.

Each problem has the page a person sees (what happened, what to do), and the HTTP status and
stable code the JSON endpoints answer with. Views and commands look it up here instead of
wording failures themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Problem(enum.StrEnum):
    NOT_CONFIGURED = "not_configured"
    UNREACHABLE = "unreachable"
    APP_REJECTED = "app_rejected"
    USER_APP_REJECTED = "user_app_rejected"
    SIGNATURE_REJECTED = "signature_rejected"
    VERIFIER_REJECTED = "verifier_rejected"
    TOO_MANY_TRIES = "too_many_tries"
    BAD_ANSWER = "bad_answer"
    EXPIRED = "expired"
    USED = "used"
    UNKNOWN = "unknown"
    DENIED = "denied"
    CLIENT_REVOKED = "client_revoked"
    INVITATION_USED = "invitation_used"
    INVITATION_EXPIRED = "invitation_expired"
    INVITATION_UNKNOWN = "invitation_unknown"


@dataclass(frozen=True)
class Wording:
    status: int
    code: str
    title: str
    happened: str
    to_do: str


_START_AGAIN = "Start again from the linking page; it takes a minute."

WORDING: dict[Problem, Wording] = {
    Problem.NOT_CONFIGURED: Wording(
        503,
        "ERR_FLICKR_NOT_CONFIGURED",
        "The hub has no Flickr app yet",
        "This hub has not been given a Flickr API key and secret, so it cannot ask Flickr for access.",
        "Tell the hub's operator: FLICKR_API_KEY and FLICKR_API_SECRET must be set.",
    ),
    Problem.UNREACHABLE: Wording(
        503,
        "ERR_FLICKR_UNREACHABLE",
        "Flickr could not be reached",
        "The hub tried to talk to Flickr and got no usable answer (the network or Flickr is down).",
        "Nothing was linked. Wait a minute and try again.",
    ),
    Problem.APP_REJECTED: Wording(
        502,
        "ERR_FLICKR_APP_REJECTED",
        "Flickr refused the hub's app",
        "Flickr does not accept the hub's Flickr API key: it is unknown or has been disabled.",
        "Nothing was linked. Tell the hub's operator to check FLICKR_API_KEY on Flickr's app page.",
    ),
    Problem.USER_APP_REJECTED: Wording(
        400,
        "ERR_FLICKR_APP_REJECTED",
        "Flickr refused that app key or secret",
        "Flickr did not accept the API key and secret you entered.",
        "Check both on your Flickr app's page (https://www.flickr.com/services/apps/) and try again.",
    ),
    Problem.SIGNATURE_REJECTED: Wording(
        502,
        "ERR_FLICKR_SIGNATURE_REJECTED",
        "Flickr rejected the hub's signature",
        "Flickr said the request's OAuth signature is invalid: the app secret the hub signs with "
        "does not belong to its API key.",
        "Nothing was linked. Tell the hub's operator to check FLICKR_API_SECRET.",
    ),
    Problem.VERIFIER_REJECTED: Wording(
        400,
        "ERR_INVALID_VERIFIER",
        "Flickr did not accept that code",
        "Flickr refused the verification code: it may be mistyped, or access was declined on Flickr.",
        "Check the code Flickr showed (9 digits, like 123-456-789) and enter it again. If you "
        "declined on Flickr, start again.",
    ),
    Problem.TOO_MANY_TRIES: Wording(
        400,
        "ERR_INVALID_STATE",
        "Too many wrong codes",
        "Flickr refused the code several times, so this attempt was closed.",
        _START_AGAIN,
    ),
    Problem.BAD_ANSWER: Wording(
        502,
        "ERR_FLICKR_BAD_RESPONSE",
        "Flickr's answer made no sense",
        "Flickr answered, but not with what OAuth promises (no token in the answer).",
        "Nothing was linked. Try again in a minute; if it keeps happening, tell the hub's operator.",
    ),
    Problem.EXPIRED: Wording(
        400,
        "ERR_INVALID_STATE",
        "This linking attempt has expired",
        "More than 10 minutes passed between starting and coming back from Flickr, so the "
        "attempt was closed.",
        _START_AGAIN,
    ),
    Problem.USED: Wording(
        400,
        "ERR_INVALID_STATE",
        "This link has already been used",
        "The answer from Flickr in this link was already used to link an account; each one works once.",
        "If you finished linking, your user_id was shown then and the account is linked. "
        "Otherwise, start again.",
    ),
    Problem.UNKNOWN: Wording(
        400,
        "ERR_INVALID_STATE",
        "This link does not belong to a linking attempt here",
        "The hub has no record of this attempt in this browser: it was started elsewhere, the "
        "browser's cookies were cleared, or it expired.",
        _START_AGAIN,
    ),
    Problem.DENIED: Wording(
        400,
        "ERR_ACCESS_DENIED",
        "Access was declined on Flickr",
        "Flickr says you did not authorise the hub, so nothing was linked.",
        "If that was a mistake, start again and choose \u201cOK, I\u2019ll authorize it\u201d on Flickr.",
    ),
    Problem.CLIENT_REVOKED: Wording(
        403,
        "ERR_FORBIDDEN",
        "This client can no longer link accounts",
        "The API client you were linking for has been revoked by the hub's operator.",
        "Ask the operator (or whoever sent you here) for a new link.",
    ),
    Problem.INVITATION_USED: Wording(
        400,
        "ERR_INVITATION_USED",
        "This invitation has already been used",
        "Each invitation link links one Flickr account, and this one has done so.",
        "Ask whoever sent it for a new invitation.",
    ),
    Problem.INVITATION_EXPIRED: Wording(
        400,
        "ERR_INVITATION_EXPIRED",
        "This invitation has expired",
        "The invitation link is past its expiry time.",
        "Ask whoever sent it for a new invitation.",
    ),
    Problem.INVITATION_UNKNOWN: Wording(
        404,
        "ERR_INVITATION_NOT_FOUND",
        "This invitation link is not valid",
        "The hub does not know this invitation: the link may be incomplete (check it was copied whole).",
        "Copy the whole link again, or ask whoever sent it for a new one.",
    ),
}


class LinkError(Exception):
    """Linking stopped; `problem` says why in words a person understands."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem

    @property
    def wording(self) -> Wording:
        return WORDING[self.problem]
