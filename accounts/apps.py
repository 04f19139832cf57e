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
        from django.db.models.signals import post_delete, post_save

        from accounts import lookups, schema  # noqa: F401  (schema registers the API key's OpenAPI scheme)
        from accounts.models import ApiClient, FlickrAccount, FlickrApp

        # A change this process makes to a client, an account or an app is seen by its next
        # request at once; other processes see it within API_LOOKUP_CACHE_SECONDS.
        for model in (ApiClient, FlickrAccount, FlickrApp):
            for signal in (post_save, post_delete):
                signal.connect(lookups.forget_all, sender=model, dispatch_uid=f"lookups-{model.__name__}")

        for name in OAUTH_LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
