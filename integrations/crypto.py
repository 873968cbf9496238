"""Encryption at rest for connection secrets (Fernet / MultiFernet).

Keys come from ``settings.FIELD_ENCRYPTION_KEYS`` (first key encrypts, all keys
decrypt). Without configured keys (development only) a key is derived from
SECRET_KEY and the system check ``integrations.W001`` says so.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _derived_dev_key() -> bytes:
    digest = hashlib.sha256(
        b"integrations-field-encryption:" + settings.SECRET_KEY.encode()
    ).digest()
    return base64.urlsafe_b64encode(digest)


def configured_keys() -> list[bytes]:
    keys = [k.strip().encode() for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()]
    return keys or [_derived_dev_key()]


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[bytes, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError) as exc:  # malformed key material
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be comma-separated Fernet keys "
            "(generate one with `python manage.py generate_encryption_key`)."
        ) from exc


def fernet() -> MultiFernet:
    # Settings are read on every call (cached by value) so override_settings and
    # key rotation in a running process both work.
    return _multifernet(tuple(configured_keys()))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS; "
            "the key that encrypted it was removed before rotation finished."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token with the primary key (no-op in meaning, new ciphertext)."""
    return fernet().rotate(token.encode()).decode()


def generate_key() -> str:
    return Fernet.generate_key().decode()


def fingerprint(value: str) -> str:
    """Short, non-reversible label for a secret, safe to show to operators."""
    return hashlib.sha256(value.encode()).hexdigest()[:8]
