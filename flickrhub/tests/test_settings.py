"""Safe defaults: production refuses to start with DEBUG on or a default secret key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BROKER_URL", "REDIS_URL"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "FLICKRHUB_DATA_DIR": str(tmp_path), **env},
    )


@pytest.mark.parametrize(
    "env, complaint",
    [
        ({"DEBUG": "1", "SECRET_KEY": "x" * 60}, "DEBUG must be off"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "django-insecure-" + "a" * 50}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "q8$w" * 15, "FLICKRHUB_ENCRYPTION_KEYS": ""}, "FLICKRHUB_ENCRYPTION_KEYS"),
        (
            {"SECRET_KEY": "q8$w" * 15, "BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/", "REDIS_URL": ""},
            "REDIS_URL must be set",
        ),
    ],
)
def test_production_refuses_unsafe_settings(tmp_path, env, complaint):
    base = {
        "SERVICE_ENV": "production",
        "ALLOWED_HOSTS": "hub.example.com",
        "FLICKRHUB_ENCRYPTION_KEYS": "3n2dvb1mQnZt8y0dC0d5yP3g2fZf7H0m4Yq1mYk2s8U=",
    }
    result = run_check(tmp_path, **{**base, **env})
    assert result.returncode != 0
    assert complaint in result.stderr


def test_the_embedded_default_generates_its_keys_and_keeps_them_private(tmp_path):
    result = run_check(tmp_path, SECRET_KEY="", FLICKRHUB_ENCRYPTION_KEYS="")
    assert result.returncode == 0, result.stderr
    for name in ("secret_key", "encryption_key"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0


def test_env_example_documents_every_variable_the_settings_read():
    settings_text = (ROOT / "flickrhub/settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z0-9_]+)"', settings_text))
    read |= set(re.findall(r'env\.db_url\(\s*"([A-Z0-9_]+)"', settings_text))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, re.MULTILINE))
    assert read, "no variables found in settings"
    assert read - documented == set(), f"undocumented in .env.example: {sorted(read - documented)}"


@pytest.mark.django_db
def test_every_model_change_has_its_migration():
    # A model's index or field changed without a migration leaves the database unlike the code
    # (the fair dispatcher's parked-jobs index once covered only retrying jobs this way).
    from django.core.management import call_command

    try:
        call_command("makemigrations", "--check", "--dry-run", verbosity=0)
    except SystemExit as exit_:
        pytest.fail(f"models changed without a migration (manage.py makemigrations): exit {exit_.code}")
