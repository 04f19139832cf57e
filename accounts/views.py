"""The linking pages: /connect/ → Flickr → /connect/callback/ (or the code page) → done.

Who may link: a signed-in person for the API clients they manage (staff: any), or anyone
holding a one-time invitation for its client. The attempt is bound to this browser's session:
the session remembers each request token it started with the attempt's `state`, and the
callback must match both. Every failure renders `connect/problem.html`, which says what
happened and what to do.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import flickr_oauth, pending
from accounts.forms import CodeForm, ConnectForm
from accounts.models import ApiClient, Invitation
from accounts.pending import PendingAuthorization
from accounts.problems import LinkError, Problem
from accounts.selectors import clients_linkable_by, invitation_by_token
from accounts.services import authorization_complete, authorization_start

BROWSER_CHANNEL = "browser"
_ATTEMPTS = "connect_attempts"  # session: {oauth_token: {"state", "created_at", "done"}}
_INVITATION = "connect_invitation"  # session: the redeemed invitation's id
_DONE = "connect_done"  # session: what the done page shows
_MAX_ATTEMPTS_KEPT = 5


def problem_page(request: HttpRequest, problem: Problem, **context: Any) -> HttpResponse:
    error = LinkError(problem)
    return render(
        request,
        "connect/problem.html",
        {"wording": error.wording, "problem": problem.value, **context},
        status=error.wording.status,
    )


def _invitation(request: HttpRequest) -> Invitation | None:
    invitation_id = request.session.get(_INVITATION)
    if invitation_id is None:
        return None
    return Invitation.objects.select_related("client").filter(pk=invitation_id).first()


def _invitation_problem(invitation: Invitation) -> Problem | None:
    if invitation.used_at is not None:
        return Problem.INVITATION_USED
    if invitation.state == "expired":
        return Problem.INVITATION_EXPIRED
    if not invitation.client.is_active:
        return Problem.CLIENT_REVOKED
    return None


def _callback_url() -> str:
    # Flickr can only send the person back to an address it can reach: without a public base
    # URL the hub falls back to the out-of-band code.
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL + reverse("connect-callback")
    return flickr_oauth.OOB


def _remember(request: HttpRequest, attempt: PendingAuthorization) -> None:
    attempts = dict(request.session.get(_ATTEMPTS, {}))
    attempts[attempt.oauth_token] = {"state": attempt.state, "created_at": attempt.created_at, "done": False}
    # Keep the newest few: enough for a couple of tabs, never a growing session.
    newest = sorted(attempts.items(), key=lambda item: item[1]["created_at"])[-_MAX_ATTEMPTS_KEPT:]
    request.session[_ATTEMPTS] = dict(newest)


@never_cache
@require_http_methods(["GET", "POST"])
def connect_start(request: HttpRequest) -> HttpResponse:
    invitation = _invitation(request)
    if invitation is not None and (problem := _invitation_problem(invitation)):
        request.session.pop(_INVITATION, None)
        return problem_page(request, problem)
    clients = None if invitation is not None else clients_linkable_by(request.user)
    if invitation is None and not request.user.is_authenticated:
        return render(request, "connect/sign_in_needed.html", status=200)
    if clients is not None and not clients.exists():
        return render(request, "connect/no_clients.html", status=403)

    form = ConnectForm(
        request.POST or None, clients=clients, allow_user_apps=settings.CONNECT_ALLOW_USER_APPS
    )
    if request.method == "POST" and form.is_valid():
        client: ApiClient = invitation.client if invitation is not None else form.cleaned_data["client"]
        try:
            attempt = authorization_start(
                client=client,
                perms=form.cleaned_data["perms"],
                callback=_callback_url(),
                channel=BROWSER_CHANNEL,
                app_key=form.cleaned_data.get("app_key", ""),
                app_secret=form.cleaned_data.get("app_secret", ""),
                invitation=invitation,
            )
        except LinkError as error:
            return problem_page(request, error.problem)
        _remember(request, attempt)
        if attempt.mode == "oob":
            return redirect("connect-code", oauth_token=attempt.oauth_token)
        return redirect(flickr_oauth.authorize_url(attempt.oauth_token, attempt.perms))
    unfinished = any(not a["done"] for a in request.session.get(_ATTEMPTS, {}).values())
    return render(
        request,
        "connect/start.html",
        {"form": form, "invitation": invitation, "unfinished": unfinished},
        status=400 if form.is_bound else 200,
    )


def _session_attempt(
    request: HttpRequest, oauth_token: str
) -> tuple[PendingAuthorization | None, Problem | None]:
    """The live attempt this browser started with `oauth_token`, or why there is none."""
    entry = request.session.get(_ATTEMPTS, {}).get(oauth_token)
    if entry is None:
        return None, (Problem.USED if pending.was_used(oauth_token) else Problem.UNKNOWN)
    if entry.get("done"):
        return None, Problem.USED
    if pending.now() - float(entry["created_at"]) > pending.PENDING_TTL_SECONDS:
        return None, Problem.EXPIRED
    attempt = pending.get(oauth_token)
    if attempt is None:
        return None, (Problem.USED if pending.was_used(oauth_token) else Problem.EXPIRED)
    if attempt.channel != BROWSER_CHANNEL or attempt.state != entry["state"]:
        return None, Problem.UNKNOWN
    return attempt, None


def _finish(request: HttpRequest, attempt: PendingAuthorization, verifier: str) -> HttpResponse:
    try:
        account, created = authorization_complete(attempt=attempt, verifier=verifier)
    except LinkError as error:
        if error.problem is not Problem.VERIFIER_REJECTED:
            _mark_done(request, attempt.oauth_token)
        raise
    _mark_done(request, attempt.oauth_token)
    request.session.pop(_INVITATION, None)
    request.session[_DONE] = {
        "user_id": str(account.user_id),
        "username": account.username or account.nsid,
        "client": account.client.name,
        "perms": account.perms,
        "created": created,
    }
    return redirect("connect-done")


def _mark_done(request: HttpRequest, oauth_token: str) -> None:
    attempts = dict(request.session.get(_ATTEMPTS, {}))
    if oauth_token in attempts:
        attempts[oauth_token] = {**attempts[oauth_token], "done": True}
        request.session[_ATTEMPTS] = attempts


@never_cache
@require_http_methods(["GET"])
def connect_callback(request: HttpRequest) -> HttpResponse:
    oauth_token = request.GET.get("oauth_token", "")
    if "denied" in request.GET:
        # Flickr sends nobody back on "No thanks" (§1.3), but some OAuth 1.0a providers and
        # proxies do, with ?denied=<token>.
        _mark_done(request, request.GET.get("denied", ""))
        return problem_page(request, Problem.DENIED)
    attempt, problem = _session_attempt(request, oauth_token)
    if problem is not None or attempt is None:
        return problem_page(request, problem or Problem.UNKNOWN)
    verifier = flickr_oauth.normalise_verifier(request.GET.get("oauth_verifier", ""))
    if verifier is None:
        return problem_page(request, Problem.VERIFIER_REJECTED)
    try:
        return _finish(request, attempt, verifier)
    except LinkError as error:
        return problem_page(request, error.problem)


@never_cache
@require_http_methods(["GET", "POST"])
def connect_code(request: HttpRequest, oauth_token: str) -> HttpResponse:
    """The out-of-band page: a link to Flickr, and a box for the code Flickr shows."""
    attempt, problem = _session_attempt(request, oauth_token)
    if problem is not None or attempt is None:
        return problem_page(request, problem or Problem.UNKNOWN)
    form = CodeForm(request.POST or None)
    context = {"form": form, "authorize_url": flickr_oauth.authorize_url(attempt.oauth_token, attempt.perms)}
    if request.method == "POST" and form.is_valid():
        try:
            return _finish(request, attempt, form.cleaned_data["code"])
        except LinkError as error:
            if error.problem is not Problem.VERIFIER_REJECTED:
                return problem_page(request, error.problem)
            form.add_error("code", f"{error.wording.happened} {error.wording.to_do}")
    return render(request, "connect/code.html", context, status=400 if form.is_bound else 200)


@never_cache
def connect_done(request: HttpRequest) -> HttpResponse:
    done = request.session.get(_DONE)
    if not done:
        return redirect("connect-start")
    base = settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")
    return render(request, "connect/done.html", {"done": done, "base_url": base})


@never_cache
def connect_invitation(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitation_by_token(token)
    if invitation is None:
        return problem_page(request, Problem.INVITATION_UNKNOWN)
    if problem := _invitation_problem(invitation):
        return problem_page(request, problem)
    request.session[_INVITATION] = invitation.pk
    return redirect("connect-start")


class ConnectLoginView(auth_views.LoginView):
    template_name = "connect/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("connect-start")


class ConnectLogoutView(auth_views.LogoutView):
    next_page = "connect-start"
