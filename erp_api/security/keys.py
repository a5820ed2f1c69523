"""API key material: generating a key, the prefix it is found by, and the digest it is stored as.

A key is ``erp_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 digest is
stored. A password hash (bcrypt, scrypt, argon2) would be wrong here: those are slow on purpose to
resist guessing low-entropy passwords, but nobody can enumerate 2**256 keys however fast the hash,
and the digest is computed on the hot path (every cache miss of every request), where a 100 ms hash
would be a denial of service. The first ``PREFIX_LENGTH`` characters are stored in clear as the
key's public handle: the lookup index, and what ``keys list`` shows and ``keys revoke`` accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

KEY_PREFIX: Final = "erp_"
PREFIX_LENGTH: Final = 12
"""``erp_`` and 8 random characters (48 bits): unique in practice, and not enough to guess the rest."""

MIN_KEY_LENGTH: Final = 32
MAX_KEY_LENGTH: Final = 256
# Anything else cannot be a key, so it is refused without a database lookup.
_PLAUSIBLE: Final = re.compile(rf"[\x21-\x7e]{{{MIN_KEY_LENGTH},{MAX_KEY_LENGTH}}}")


def generate_key() -> str:
    """A new random key; shown to its owner once and never stored."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


def key_digest(key: str) -> str:
    """The stored form of a key: hex SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()


def digests_match(stored: str, presented: str) -> bool:
    """Compare digests in constant time, so response timing tells nothing about how much matched."""
    return hmac.compare_digest(stored.encode("ascii"), presented.encode("ascii"))


def is_plausible_key(value: str) -> bool:
    """Could ``value`` be a key at all (length and visible ASCII)? Checked before any lookup."""
    return _PLAUSIBLE.fullmatch(value) is not None
