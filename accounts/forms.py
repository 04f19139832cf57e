"""Forms of the linking pages."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.db.models import QuerySet

from accounts import flickr_oauth
from accounts.models import ApiClient

PERMS_CHOICES = [
    ("read", "Read — see photos and account details, including private ones"),
    ("write", "Write — read, plus add, edit and replace photos"),
    ("delete", "Delete — write, plus delete photos"),
]


class ConnectForm(forms.Form):
    client = forms.ModelChoiceField(
        queryset=ApiClient.objects.none(),
        empty_label=None,
        label="Link for",
        help_text="The program (API client) that will use this Flickr account.",
    )
    perms = forms.ChoiceField(
        choices=PERMS_CHOICES,
        initial="write",
        widget=forms.RadioSelect,
        label="What may it do on Flickr?",
    )
    app_key = forms.CharField(
        required=False,
        max_length=64,
        label="Your Flickr app's key (optional)",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    # Write-only: a secret typed here is never rendered back into the page.
    app_secret = forms.CharField(
        required=False,
        max_length=128,
        label="Your Flickr app's secret",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
    )

    def __init__(
        self, *args: Any, clients: QuerySet[ApiClient] | None, allow_user_apps: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if clients is None:  # an invitation fixes the client
            del self.fields["client"]
        else:
            self.fields["client"].queryset = clients  # type: ignore[attr-defined]
        if not allow_user_apps:
            del self.fields["app_key"]
            del self.fields["app_secret"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        key, secret = data.get("app_key", "").strip(), data.get("app_secret", "").strip()
        if key and not secret:
            self.add_error("app_secret", "Enter the app's secret too, or leave both empty.")
        if secret and not key:
            self.add_error("app_key", "Enter the app's key too, or leave both empty.")
        return data


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=40,
        label="Code from Flickr",
        help_text="The 9 digits Flickr shows after you approve, like 123-456-789. Dashes and spaces are OK.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )

    def clean_code(self) -> str:
        verifier = flickr_oauth.normalise_verifier(self.cleaned_data["code"])
        if verifier is None or not re.fullmatch(r"\d{3}-\d{3}-\d{3}", verifier):
            raise forms.ValidationError("Enter the 9-digit code Flickr showed, like 123-456-789.")
        return verifier
