"""Standard Webhooks signatures (https://www.standardwebhooks.com): secrets, message ids, headers.

* A secret is ``whsec_`` followed by the base64 of ``SECRET_BYTES`` random bytes; the HMAC key is
  those bytes (the base64 *decoded*), not the text.
* The signed content is ``f"{msg_id}.{timestamp}.{payload}"``: the message id, the attempt's time
  in integer seconds since the epoch, and the body exactly as sent.
* ``webhook-signature`` is ``v1,`` followed by the base64 of the HMAC-SHA256 of that content.
* ``webhook-id`` stays the same on every attempt of a message; ``webhook-timestamp`` is the time
  of the attempt, so a receiver's replay window (five minutes in the reference libraries) holds for
  retries sent hours later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from typing import Final

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES: Final = 32
"""Above the spec's minimum of 24 bytes; the secret is 50 characters long."""
MESSAGE_ID_PREFIX: Final = "msg_"


def new_secret() -> str:
    """A fresh signing secret, ``whsec_<base64 of 32 random bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def new_message_id() -> str:
    """A unique ``webhook-id``: ``msg_`` and 32 hex digits."""
    return MESSAGE_ID_PREFIX + uuid.uuid4().hex


def signing_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the bytes its base64 stands for."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, message_id: str, timestamp: int, payload: bytes) -> str:
    """The ``webhook-signature`` value of ``payload`` sent as ``message_id`` at ``timestamp``."""
    content = b"%s.%d.%s" % (message_id.encode("ascii"), timestamp, payload)
    digest = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, payload: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, payload),
    }
