"""The page a person sees at /services/oauth/authorize (FLICKR-API.md §1.3).

Plain HTML with a form, no JavaScript: pick a seeded person to act as, then Approve or Deny.
Approving redirects to the app's callback with the verifier, or shows a 123-456-789 code for
`oob`. Denying does what Flickr does: it never calls the app back.
"""

from __future__ import annotations

from html import escape

from werkzeug import Request, Response
from werkzeug.utils import redirect

from .catalog import PERMS
from .models import RequestToken
from .state import SandboxState, StateError, with_query

PERMS_WORDING = {
    "read": "see your photos and account details, including private ones",
    "write": "see your photos and account details, and add, edit and replace your photos",
    "delete": "see, add, edit, replace and delete your photos",
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} | Flickr sandbox</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem;
  line-height: 1.5; color: #212124; }}
button {{ font-size: 1rem; padding: .5rem 1.25rem; margin-right: .5rem; }}
select {{ font-size: 1rem; padding: .25rem; }}
code {{ font-size: 1.75rem; letter-spacing: .1em; }}
.note {{ color: #5a5a5f; font-size: .9rem; }}
</style>
</head>
<body>
<main>
{body}
<p class="note">This is the FlickrHub sandbox, a stand-in for flickr.com. Nothing here is real.</p>
</main>
</body>
</html>
"""


def _page(title: str, body: str, status: int = 200) -> Response:
    html = _PAGE.format(title=escape(title), body=body)
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def _oops(message: str) -> Response:
    return _page("Oops!", f"<h1>Oops!</h1>\n<p>{escape(message, quote=False)}</p>", status=400)


def _consent_form(state: SandboxState, rt: RequestToken, perms: str, action: str) -> Response:
    consumer = state.consumer(rt.consumer_key)
    app = escape(consumer.name if consumer else "An app")
    options = "\n".join(
        f'<option value="{escape(u.nsid)}">{escape(u.username)} ({escape(u.fullname)})</option>'
        for u in state.users
    )
    body = f"""<h1>{app} would like to link to your Flickr account</h1>
<p>If you approve, <strong>{app}</strong> will be able to {PERMS_WORDING[perms]}.</p>
<p>Permission asked for: <strong id="perms">{perms}</strong></p>
<form method="post" action="{escape(action)}">
<input type="hidden" name="oauth_token" value="{escape(rt.token)}">
<input type="hidden" name="perms" value="{perms}">
<p><label for="nsid">Act as</label>
<select id="nsid" name="nsid">
{options}
</select></p>
<p><button type="submit" name="action" value="approve">OK, I'll authorize it</button>
<button type="submit" name="action" value="deny">No thanks</button></p>
</form>"""
    return _page(f"Authorize {consumer.name if consumer else 'an app'}", body)


def authorize(request: Request, state: SandboxState) -> Response:
    values = request.form if request.method == "POST" else request.args
    rt = state.live_request_token(values.get("oauth_token"))
    if rt is None:
        return _oops("That authorization link is invalid or has expired. Please ask the app again.")
    perms = values.get("perms", "")
    if perms not in PERMS[1:]:
        # Flickr's wording for a missing or unknown perms value (python-social-auth note, §1.3).
        return _oops("Flickr doesn't recognise the permission set.")
    if request.method == "GET":
        return _consent_form(state, rt, perms, request.path)

    consumer = state.consumer(rt.consumer_key)
    app = escape(consumer.name if consumer else "the app")
    if values.get("action") != "approve":
        # Cancel sends the person to Flickr's home page, never back to the callback (§1.3).
        state.deny(rt.token)
        return _page(
            "Not authorized",
            f"<h1>You didn't authorize {app}</h1>\n"
            f"<p>{app} has not been given access to your account. You can close this page.</p>"
            '\n<p><a href="/">Go to the sandbox home page</a></p>',
        )
    try:
        verifier = state.approve(rt.token, values.get("nsid", ""), perms)
    except StateError:
        return _oops("Please choose someone to act as.")
    if rt.callback == "oob":
        return _page(
            "Authorized",
            f"<h1>You have authorized {app}</h1>\n"
            f"<p>Enter this code into {app} to finish linking your account:</p>\n"
            f'<p><code id="verifier">{escape(verifier)}</code></p>',
        )
    return redirect(with_query(rt.callback, oauth_token=rt.token, oauth_verifier=verifier), 302)
