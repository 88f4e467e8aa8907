"""API key format (API.md 2.2): `egret_` + 34 random base62 characters + a 6-character
base62 CRC32 of the first 40 characters. Checked without touching the database."""

from __future__ import annotations

import hashlib
import secrets
import string
import zlib

PREFIX = "egret_"
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # 0-9A-Za-z
RANDOM_LENGTH = 34
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH  # 46
DISPLAY_PREFIX_LENGTH = 20
_ALPHABET_SET = frozenset(ALPHABET)


def base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(body: str) -> str:
    return base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    body = PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + checksum(body)


def is_well_formed(key: str) -> bool:
    if len(key) != KEY_LENGTH or not key.startswith(PREFIX):
        return False
    tail = key[len(PREFIX):]
    if not _ALPHABET_SET.issuperset(tail):
        return False
    body = key[: len(PREFIX) + RANDOM_LENGTH]
    return checksum(body) == key[len(body):]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]
