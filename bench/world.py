"""The benchmark's world in a hub's database: one API client with one linked sandbox account.

Run in the environment of the hub being measured (its DATABASE_URL, or its data directory for
the embedded default), after `migrate`; prints JSON for the measuring process:

    python -m bench.world --sandbox http://127.0.0.1:8099
    -> {"api_key": …, "user_id": …, "token": …, "token_secret": …, "nsid": …}

The token comes from the sandbox's control endpoint, so the hub signs real sandbox calls; the
measuring process also uses it for its direct `flickrapi` calls, the baseline of added latency.
"""

from __future__ import annotations

import argparse
import json
import os


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sandbox", required=True, help="the sandbox's base URL")
    parser.add_argument("--name", default="bench")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flickrhub.settings")
    import django

    django.setup()
    import requests

    from accounts.services import account_link, api_client_create, flickr_server_app

    issued = requests.post(f"{args.sandbox}/__sandbox/tokens", json={"perms": "write"}, timeout=10)
    issued.raise_for_status()
    token = issued.json()
    client, api_key = api_client_create(name=args.name)
    account, _ = account_link(
        client=client,
        app=flickr_server_app(),
        nsid=token["user_nsid"],
        username=token["username"],
        fullname=token["fullname"],
        perms=token["perms"],
        token=token["oauth_token"],
        token_secret=token["oauth_token_secret"],
    )
    print(
        json.dumps(
            {
                "api_key": api_key,
                "user_id": str(account.user_id),
                "nsid": token["user_nsid"],
                "token": token["oauth_token"],
                "token_secret": token["oauth_token_secret"],
            }
        )
    )


if __name__ == "__main__":
    main()
