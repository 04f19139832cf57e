"""Sandbox mode: the hub serves the sandbox Flickr itself and uses it as its Flickr.

For a newcomer with no Flickr API key: `FLICKR_SANDBOX=1 make run` and one curl line later a
call has gone through the whole path. Never for production: the sandbox's credentials are
public test values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from accounts.models import ApiClient
from accounts.services import account_link, flickr_server_app

DEMO_CLIENT_NAME = "sandbox-demo"


@dataclass(frozen=True)
class SandboxDemo:
    sandbox_url: str
    client_name: str
    api_key: str = field(repr=False)
    user_id: str
    username: str


def sandbox_start(*, port: int, host: str = "127.0.0.1") -> SandboxDemo:
    from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, FakeFlickr, SandboxServer

    app = FakeFlickr(seed=1, control=True)
    server = SandboxServer(app, host=host, port=port).start()
    base = server.url
    settings.FLICKR_REST_URL = f"{base}/services/rest/"
    settings.FLICKR_UPLOAD_URL = f"{base}/services/upload/"
    settings.FLICKR_REPLACE_URL = f"{base}/services/replace/"
    settings.FLICKR_OAUTH_REQUEST_TOKEN_URL = f"{base}/services/oauth/request_token"
    settings.FLICKR_OAUTH_AUTHORIZE_URL = f"{base}/services/oauth/authorize"
    settings.FLICKR_OAUTH_ACCESS_TOKEN_URL = f"{base}/services/oauth/access_token"
    settings.FLICKR_API_KEY = SANDBOX_CONSUMER_KEY
    settings.FLICKR_API_SECRET = SANDBOX_CONSUMER_SECRET

    # The demo client's key is known only at creation, so sandbox mode gives it a new one at
    # every start and prints it.
    key = ApiClient.generate_key()
    client = ApiClient.objects.filter(name=DEMO_CLIENT_NAME).first() or ApiClient(name=DEMO_CLIENT_NAME)
    client.set_key(key)
    client.is_active = True
    client.save()

    token, token_secret, nsid = app.state.demo_token(perms="delete")
    user = _user(app, nsid)
    account, _ = account_link(
        client=client,
        app=flickr_server_app(),
        nsid=nsid,
        username=user.get("username", ""),
        fullname=user.get("fullname", ""),
        perms="delete",
        token=token,
        token_secret=token_secret,
    )
    return SandboxDemo(
        sandbox_url=base,
        client_name=DEMO_CLIENT_NAME,
        api_key=key,
        user_id=str(account.user_id),
        username=user.get("username", nsid),
    )


def _user(app: object, nsid: str) -> dict[str, str]:
    users = getattr(getattr(app, "state", None), "users", None)
    items = users.values() if isinstance(users, dict) else (users or [])
    for user in items:
        data = user if isinstance(user, dict) else vars(user)
        if data.get("nsid") == nsid:
            return {k: str(v) for k, v in data.items() if isinstance(v, str)}
    return {}
