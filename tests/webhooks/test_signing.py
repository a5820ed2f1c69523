"""Signatures follow the Standard Webhooks spec: the reference library verifies them."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from erp_api.webhooks.signing import new_message_id, new_secret, sign, signed_headers


def test_the_spec_example_signs_to_its_published_signature() -> None:
    # The example of the Standard Webhooks specification (and of its reference libraries).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signed_headers_verify_with_the_standardwebhooks_library() -> None:
    secret = new_secret()
    payload = '{"type":"alert.opened","data":{"id":7,"note":"ü ✓"}}'.encode()
    headers = signed_headers(secret, new_message_id(), int(time.time()), payload)
    assert Webhook(secret).verify(payload, headers) == {
        "type": "alert.opened",
        "data": {"id": 7, "note": "ü ✓"},
    }


def test_a_changed_body_another_secret_or_an_old_timestamp_do_not_verify() -> None:
    secret = new_secret()
    payload = b'{"a":1}'
    headers = signed_headers(secret, "msg_1", int(time.time()), payload)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(payload, headers)
    stale = signed_headers(secret, "msg_1", int(time.time()) - 3600, payload)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(payload, stale)


def test_the_headers_carry_the_message_id_and_the_integer_timestamp_of_the_attempt() -> None:
    headers = signed_headers(new_secret(), "msg_abc", 1_700_000_000, b"{}")
    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"].startswith("v1,")


def test_secrets_are_whsec_and_base64_of_32_random_bytes_and_never_repeat() -> None:
    secrets = {new_secret() for _ in range(100)}
    assert len(secrets) == 100
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_message_ids_are_unique_and_fit_the_column() -> None:
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(id_.startswith("msg_") and len(id_) == 36 for id_ in ids)
