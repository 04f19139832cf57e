import logging

from django.apps import AppConfig

# requests-oauthlib and oauthlib narrate OAuth at DEBUG with the tokens and secrets in Python
# reprs ("Obtained token {'oauth_token_secret': …}"), before the hub has seen the values and
# could register them with the log redactor. Nothing they say at DEBUG is worth that risk.
OAUTH_LIBRARY_LOGGERS = ("requests_oauthlib", "oauthlib")


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API clients"

    def ready(self) -> None:
        from accounts import schema  # noqa: F401  (registers the API key's OpenAPI scheme)

        for name in OAUTH_LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
