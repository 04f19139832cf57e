"""Writes on accounts: API clients, invitations, the OAuth linking flow, and Flickr accounts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import flickr_oauth, lookups, pending, vault
from accounts.flickr_oauth import Failure, OAuthFailure
from accounts.models import AccountStatus, ApiClient, FlickrAccount, FlickrApp, Invitation
from accounts.pending import PendingAuthorization
from accounts.problems import LinkError, Problem
from accounts.selectors import ACCOUNTS

log = structlog.get_logger(__name__)

# Wrong out-of-band codes accepted before an attempt is closed.
MAX_VERIFIER_TRIES = 5


def api_client_create(*, name: str) -> tuple[ApiClient, str]:
    """Creates a client and returns it with its API key — the only time the key is known."""
    key = ApiClient.generate_key()
    client = ApiClient(name=name)
    client.set_key(key)
    client.save()
    return client, key


def flickr_app_get_or_create(
    *, api_key: str, api_secret: str, name: str = "", server_app: bool = False
) -> FlickrApp:
    """The app row for a consumer key, its secret updated to the one given."""
    with transaction.atomic():
        app = FlickrApp.objects.select_for_update().filter(api_key=api_key).first()
        if app is None:
            app = FlickrApp(api_key=api_key, name=name or ("Server app" if server_app else api_key[:8]))
        if server_app:
            app.is_server_app = True
        app.set_secret(api_secret)
        app.save()
    return app


def flickr_server_app() -> FlickrApp:
    """The app configured by FLICKR_API_KEY / FLICKR_API_SECRET."""
    if not settings.FLICKR_API_KEY or not settings.FLICKR_API_SECRET:
        raise ValueError("FLICKR_API_KEY and FLICKR_API_SECRET are not set: the hub has no Flickr app.")
    return flickr_app_get_or_create(
        api_key=settings.FLICKR_API_KEY, api_secret=settings.FLICKR_API_SECRET, server_app=True
    )


def account_link(
    *,
    client: ApiClient,
    app: FlickrApp,
    nsid: str,
    username: str,
    fullname: str,
    perms: str,
    token: str,
    token_secret: str,
    user_id: str | None = None,
) -> tuple[FlickrAccount, bool]:
    """Stores a Flickr account's access token for a client. Linking the same Flickr account
    again (same client and app) replaces the token and keeps the `user_id` integrators know.
    Returns the account and whether it was new; `user_id` names a new account (an
    existing one keeps its own)."""
    with transaction.atomic():
        account = (
            FlickrAccount.objects.select_for_update()
            .filter(client=client, app=app, nsid=nsid, duplicate_of__isnull=True)
            .first()
        )
        created = account is None
        if account is None:
            account = FlickrAccount(client=client, app=app, nsid=nsid)
            if user_id:
                account.user_id = uuid.UUID(user_id)
        account.username = username
        account.fullname = fullname
        account.perms = perms
        account.status = AccountStatus.ACTIVE
        account.status_reason = ""
        account.set_token(token, token_secret)
        account.save()
    return account, created


def account_mark_needs_relink(*, account_id: int, reason: str) -> None:
    """Flickr rejected the account's token: no job will use it until the person links again."""
    FlickrAccount.objects.filter(pk=account_id, status=AccountStatus.ACTIVE).update(
        status=AccountStatus.NEEDS_RELINK, status_reason=reason[:300]
    )
    lookups.forget(ACCOUNTS)  # an update sends no signal


def account_revoke(*, account_ids: list[int], reason: str = "Revoked by an operator.") -> int:
    """Stops the hub using these accounts and erases their tokens: revoking cannot be undone,
    only a new link brings an account back (with its user_id). Flickr itself offers no call
    to revoke a token; the person can remove the app at flickr.com/services/auth/list.gne."""
    count = FlickrAccount.objects.filter(pk__in=account_ids).update(
        status=AccountStatus.REVOKED,
        status_reason=reason[:300],
        oauth_token_encrypted="",
        oauth_token_secret_encrypted="",
        updated_at=timezone.now(),
    )
    lookups.forget(ACCOUNTS)  # an update sends no signal
    return count


@dataclass(frozen=True)
class TokenCheck:
    ok: bool
    message: str
    username: str = ""


def account_check_token(*, account: FlickrAccount) -> TokenCheck:
    """Asks Flickr whether the account's token still works (flickr.test.login). A token
    Flickr rejects marks the account "needs re-link"; a network problem changes nothing."""
    from flickr import client as flickr_client
    from flickr.errors import ErrorClass, FlickrError

    if account.status == AccountStatus.REVOKED or not account.oauth_token_encrypted:
        return TokenCheck(ok=False, message="revoked: the hub holds no token for it")
    try:
        answer = flickr_client.call_rest(account.credentials(), "flickr.test.login", {})
    except vault.VaultError as exc:
        return TokenCheck(ok=False, message=str(exc))
    except FlickrError as error:
        if error.error_class is ErrorClass.RELINK:
            account_mark_needs_relink(account_id=account.pk, reason=error.message)
            return TokenCheck(ok=False, message=f"rejected by Flickr, marked needs re-link ({error.message})")
        return TokenCheck(ok=False, message=f"not checked: {error.message}")
    user = answer.get("user", {}) if isinstance(answer, dict) else {}
    username = (user.get("username") or {}).get("_content", "") if isinstance(user, dict) else ""
    return TokenCheck(ok=True, message="the token works", username=str(username))


# --- Invitations ------------------------------------------------------------------------------


def invitation_create(
    *, client: ApiClient, expires_hours: float = 72, note: str = "", created_by: Any = None
) -> tuple[Invitation, str]:
    """A one-time link for `client`; returns it with its token, known only now."""
    token = Invitation.generate_token()
    invitation = Invitation(
        client=client,
        note=note[:200],
        expires_at=timezone.now() + timedelta(hours=expires_hours),
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    invitation.set_token(token)
    invitation.save()
    return invitation, token


def invitation_path(token: str) -> str:
    from django.urls import reverse

    return reverse("connect-invitation", args=[token])


def invitation_url(token: str) -> str:
    """The invitation's address: absolute when PUBLIC_BASE_URL is set, else a path."""
    return f"{settings.PUBLIC_BASE_URL}{invitation_path(token)}"


# --- The OAuth linking flow (browser, JSON API and shell share it) ------------------------------


def _problem_of(failure: OAuthFailure, *, user_app: bool) -> Problem:
    if failure.failure is Failure.UNREACHABLE:
        return Problem.UNREACHABLE
    if failure.failure in (Failure.APP_REJECTED, Failure.SIGNATURE_REJECTED) and user_app:
        return Problem.USER_APP_REJECTED
    if failure.failure is Failure.APP_REJECTED:
        return Problem.APP_REJECTED
    if failure.failure is Failure.SIGNATURE_REJECTED:
        return Problem.SIGNATURE_REJECTED
    if failure.failure is Failure.TOKEN_REJECTED:
        return Problem.VERIFIER_REJECTED
    return Problem.BAD_ANSWER


def _consumer(app_key: str, app_secret: str) -> tuple[str, str, bool]:
    """(consumer key, secret, whether it is a person's own app). The hub's own key, sent by an
    original-service client that always sent one, means the hub's app whatever secret came."""
    if not app_key or app_key == settings.FLICKR_API_KEY:
        if not settings.FLICKR_API_KEY or not settings.FLICKR_API_SECRET:
            raise LinkError(Problem.NOT_CONFIGURED)
        return settings.FLICKR_API_KEY, settings.FLICKR_API_SECRET, False
    return app_key, app_secret, True


def authorization_start(
    *,
    client: ApiClient,
    perms: str,
    callback: str,
    channel: str,
    app_key: str = "",
    app_secret: str = "",
    invitation: Invitation | None = None,
    user_id: str | None = None,
) -> PendingAuthorization:
    """Asks Flickr for a request token and remembers the attempt for ten minutes. The caller
    sends the person to `flickr_oauth.authorize_url(pending.oauth_token, perms)`."""
    if perms not in flickr_oauth.PERMS:
        raise ValueError(f"perms must be one of {', '.join(flickr_oauth.PERMS)}")
    if not client.is_active:
        raise LinkError(Problem.CLIENT_REVOKED)
    key, secret, user_app = _consumer(app_key.strip(), app_secret.strip())
    try:
        token = flickr_oauth.fetch_request_token(consumer_key=key, consumer_secret=secret, callback=callback)
    except OAuthFailure as failure:
        log.warning("flickr_link_start_failed", client=client.name, reason=failure.detail or failure.failure)
        raise LinkError(_problem_of(failure, user_app=user_app)) from None
    attempt = PendingAuthorization(
        oauth_token=token.token,
        token_secret_encrypted=vault.encrypt(token.secret),
        client_id=str(client.pk),
        perms=perms,
        callback=callback,
        channel=channel,
        consumer_key=key,
        consumer_secret_encrypted=vault.encrypt(secret) if user_app else "",
        invitation_id=invitation.pk if invitation is not None else None,
        user_id=user_id,
    )
    pending.save(attempt)
    log.info(
        "flickr_link_started",
        client=client.name,
        channel=channel,
        mode=attempt.mode,
        perms=perms,
        own_app=user_app,
    )
    return attempt


def _app_for(attempt: PendingAuthorization) -> FlickrApp:
    if not attempt.consumer_secret_encrypted:
        try:
            return flickr_server_app()
        except ValueError:
            raise LinkError(Problem.NOT_CONFIGURED) from None
    # The secret has now signed two exchanges Flickr accepted, so it is the app's real secret
    # and may be stored (and may replace an outdated one).
    return flickr_app_get_or_create(
        api_key=attempt.consumer_key, api_secret=vault.decrypt(attempt.consumer_secret_encrypted)
    )


def authorization_complete(*, attempt: PendingAuthorization, verifier: str) -> tuple[FlickrAccount, bool]:
    """Trades the verifier for an access token and links the account for the attempt's client,
    at most once per attempt. Returns the account and whether it is new."""
    if not pending.claim(attempt):
        raise LinkError(Problem.USED)
    consumer_secret = (
        vault.decrypt(attempt.consumer_secret_encrypted)
        if attempt.consumer_secret_encrypted
        else settings.FLICKR_API_SECRET
    )
    try:
        grant = flickr_oauth.fetch_access_token(
            consumer_key=attempt.consumer_key,
            consumer_secret=consumer_secret,
            request_token=flickr_oauth.RequestToken(attempt.oauth_token, attempt.token_secret()),
            verifier=verifier,
        )
    except OAuthFailure as failure:
        problem = _problem_of(failure, user_app=bool(attempt.consumer_secret_encrypted))
        log.warning("flickr_link_exchange_failed", reason=failure.detail or failure.failure)
        if problem is Problem.VERIFIER_REJECTED and attempt.failed_tries + 1 >= MAX_VERIFIER_TRIES:
            pending.discard(attempt)
            raise LinkError(Problem.TOO_MANY_TRIES) from None
        pending.release(attempt, count_failure=problem is Problem.VERIFIER_REJECTED)
        raise LinkError(problem) from None
    # Flickr has spent the request token: from here the attempt is over, linked or not.
    try:
        with transaction.atomic():
            client = ApiClient.objects.filter(pk=attempt.client_id, is_active=True).first()
            if client is None:
                raise LinkError(Problem.CLIENT_REVOKED)
            account, created = account_link(
                client=client,
                app=_app_for(attempt),
                nsid=grant.nsid,
                username=grant.username,
                fullname=grant.fullname,
                perms=attempt.perms,
                token=grant.token,
                token_secret=grant.secret,
                user_id=attempt.user_id,
            )
            if attempt.invitation_id is not None:
                invitation = Invitation.objects.filter(pk=attempt.invitation_id).first()
                if invitation is None or not invitation.mark_used(account=account):
                    raise LinkError(Problem.INVITATION_USED)
    finally:
        pending.finish(attempt)
    log.info(
        "flickr_account_linked",
        user_id=str(account.user_id),
        client=client.name,
        nsid=account.nsid,
        perms=account.perms,
        created=created,
        channel=attempt.channel,
    )
    return account, created
