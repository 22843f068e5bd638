"""Passwords (argon2), bearer tokens (random, stored only as digests), id-card digests and masking."""

from __future__ import annotations

import hashlib
import hmac
import re
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


# Numbers a person may type into free text (a note, a comment, an objection) or that may reach a log line:
# 18-digit resident id cards (the last character may be X), 15-digit first-generation cards, and bank
# card / account numbers (16 to 19 digits, perhaps in groups of four). Digits touching letters or other digits are left alone, so
# application ids, amounts in fen (at most 11 digits), dates and hex digests are not mistaken for them.
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")
_OLD_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{15})(?![0-9A-Za-z])")
_BANK_ACCOUNT = re.compile(r"(?<![0-9A-Za-z])\d{4}(?:[ -]?\d{4}){3}(?:[ -]?\d{1,3})?(?![0-9A-Za-z])")


def mask_bank_account(number: str) -> str:
    """The first and last four digits kept, separators (spaces, hyphens) too: ``6222 **** **** 7890``."""
    digits = [i for i, ch in enumerate(number) if ch.isdigit()]
    hidden = set(digits[4:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(number))


def mask_personal_numbers(text: str) -> str:
    """``text`` with every id-card and bank-account number in it masked (``330***********1234``)."""
    if not any(ch.isdigit() for ch in text):
        return text
    text = _ID_CARD.sub(lambda m: mask_id_card(m.group(0)), text)
    text = _OLD_ID_CARD.sub(lambda m: mask_id_card(m.group(0)), text)
    return _BANK_ACCOUNT.sub(lambda m: mask_bank_account(m.group(0)), text)
