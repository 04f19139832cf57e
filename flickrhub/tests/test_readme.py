"""The README's configuration reference lists every variable, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env_names(path: Path) -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z0-9_]+)=", path.read_text(), re.MULTILINE))


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_configuration_reference_lists_exactly_the_variables_of_env_example():
    reference = readme_section("Configuration reference")
    table = {
        name
        for row in reference.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }
    example = env_names(ROOT / ".env.example")
    assert example - table == set(), f"in .env.example, missing from the README: {sorted(example - table)}"
    assert table - example == set(), f"in the README, missing from .env.example: {sorted(table - example)}"


def test_the_compose_variables_are_documented_with_the_reference():
    reference = readme_section("Configuration reference")
    compose_only = env_names(ROOT / "docker" / "env.example") - env_names(ROOT / ".env.example")
    assert compose_only, "docker/env.example has variables of its own"
    missing = {name for name in compose_only if f"`{name}`" not in reference}
    assert missing == set()


def test_every_variable_the_deployment_files_read_is_documented():
    reference = readme_section("Configuration reference")
    read = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker" / "entrypoint.sh").read_text()))
    read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker" / "compose.yaml").read_text()))
    read |= set(
        re.findall(r'environ\.get\("([A-Z][A-Z0-9_]+)"', (ROOT / "flickrhub" / "gunicorn.py").read_text())
    )
    missing = {name for name in read if f"`{name}`" not in reference}
    assert missing == set(), f"read by docker/ or gunicorn.py but not in the README: {sorted(missing)}"
