"""Environments for running the product's settings in a subprocess, as a deployment
would (the test process itself runs config.settings_test)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Variables a developer's shell or CI may have set that would change what is tested.
_DROPPED = (
    "DEBUG",
    "SECURE_",
    "SESSION_COOKIE_",
    "CSRF_",
    "DJANGO_",
    "ALLOWED_HOSTS",
    "SECRET_KEY",
)


def settings_environment(tmp_path: Path, **env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **env,
    )
    return environment


def production_environment(tmp_path: Path, **env: str) -> dict[str, str]:
    """What the README's deployment section sets, and nothing about HTTPS: the
    production values of those are the defaults without DEBUG."""
    from cryptography.fernet import Fernet

    return settings_environment(
        tmp_path,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="integrations.example.com",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        **env,
    )


def run_python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def setting_in_subprocess(tmp_path: Path, expression: str, **env: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    result = run_python("-c", code, env=settings_environment(tmp_path, **env))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
