"""Passwords (argon2), bearer tokens (random, stored only as digests) and id-card digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def id_card_digest(key: str, id_card: str) -> str:
    return hmac.new(key.encode(), id_card.strip().upper().encode(), hashlib.sha256).hexdigest()


def mask_id_card(id_card: str) -> str:
    text = id_card.strip().upper()
    return text[:3] + "*" * max(len(text) - 7, 0) + text[-4:] if len(text) > 7 else "*" * len(text)
