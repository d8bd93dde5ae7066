"""The edge's per-caller limits: WatchTask streams per user, failed authentications per peer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from imageeditor.core.apikeys import hash_api_key
from imageeditor.core.errors import ResourceExhausted, Unauthenticated
from imageeditor.core.ports import ApiKey
from imageeditor.core.task import utcnow
from imageeditor.server.auth import CACHE_SECONDS, Authenticator
from imageeditor.server.quotas import FailureThrottle, StreamQuota


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingKeys:
    """An ApiKeyStore with one key, counting lookups."""

    def __init__(self) -> None:
        self.lookups = 0
        self.key = ApiKey("k1", "svc", "alice", hash_api_key("iek_good"), utcnow())

    def add_api_key(self, key: ApiKey) -> None:
        raise AssertionError("not used")

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        self.lookups += 1
        return self.key if key_hash == self.key.key_hash else None

    def touch_api_key(self, key_id: str, at: object) -> None:
        self.touched = getattr(self, "touched", 0) + 1


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def test_a_user_holds_at_most_the_limit_of_streams() -> None:
    quota = StreamQuota(limit=2)
    with quota.hold("alice"), quota.hold("alice"):
        with pytest.raises(ResourceExhausted) as refused, quota.hold("alice"):
            pass
        assert refused.value.reason == "TOO_MANY_STREAMS"
        assert refused.value.retry_after > 0
        with quota.hold("bob"):  # another caller's streams are their own
            pass
    with quota.hold("alice"), quota.hold("alice"):  # closed streams free their places
        pass


def test_a_stream_that_fails_gives_its_place_back() -> None:
    quota = StreamQuota(limit=1)
    with pytest.raises(RuntimeError), quota.hold("alice"):
        raise RuntimeError("the watch broke")
    with quota.hold("alice"):
        pass


def test_a_peer_guessing_keys_is_refused_before_the_store_is_asked() -> None:
    clock = Clock()
    keys = CountingKeys()
    auth = Authenticator(keys, FailureThrottle(rate=1.0, burst=5, clock=clock), clock=clock)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            auth.authenticate(bearer("iek_guess"), "ipv4:10.0.0.9")
    assert keys.lookups == 5

    with pytest.raises(ResourceExhausted) as throttled:
        auth.authenticate(bearer("iek_guess"), "ipv4:10.0.0.9")
    assert throttled.value.reason == "AUTH_THROTTLED"
    assert throttled.value.retry_after == pytest.approx(1.0)
    assert keys.lookups == 5  # no lookup for a throttled peer

    assert auth.authenticate(bearer("iek_good"), "ipv4:10.0.0.8") == "alice"  # other peers


def test_a_throttled_peer_is_let_in_again_after_the_wait() -> None:
    clock = Clock()
    auth = Authenticator(CountingKeys(), FailureThrottle(1.0, 2, clock=clock), clock=clock)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            auth.authenticate(bearer("iek_guess"), "peer")
    with pytest.raises(ResourceExhausted):
        auth.authenticate(bearer("iek_good"), "peer")

    clock.now += 1.0
    assert auth.authenticate(bearer("iek_good"), "peer") == "alice"


def test_a_known_key_is_answered_from_the_cache_even_for_a_throttled_peer() -> None:
    clock = Clock()
    keys = CountingKeys()
    auth = Authenticator(keys, FailureThrottle(1.0, 1, clock=clock), clock=clock)
    assert auth.authenticate(bearer("iek_good"), "peer") == "alice"
    with pytest.raises(Unauthenticated):
        auth.authenticate(bearer("iek_guess"), "peer")

    assert auth.authenticate(bearer("iek_good"), "peer") == "alice"
    assert keys.lookups == 2


def test_missing_credentials_count_as_failures_too() -> None:
    clock = Clock()
    auth = Authenticator(CountingKeys(), FailureThrottle(1.0, 1, clock=clock), clock=clock)
    with pytest.raises(Unauthenticated):
        auth.authenticate([], "peer")
    with pytest.raises(ResourceExhausted):
        auth.authenticate(bearer("iek_good"), "peer")


class RevocableKeys(CountingKeys):
    def revoke(self) -> None:
        self.key = replace(self.key, revoked_at=utcnow())


def test_the_event_loop_is_answered_from_the_cache_only() -> None:
    clock = Clock()
    keys = CountingKeys()
    auth = Authenticator(keys, clock=clock)
    assert auth.cached_user(bearer("iek_good")) is None  # never looked up: the store must say
    assert auth.cached_user([]) is None

    assert auth.authenticate(bearer("iek_good"), "peer") == "alice"
    assert auth.cached_user(bearer("iek_good")) == "alice"
    clock.now += CACHE_SECONDS
    assert auth.cached_user(bearer("iek_good")) is None
    assert keys.lookups == 1


def test_a_revoked_key_is_refused_once_its_cache_entry_expires() -> None:
    clock = Clock()
    keys = RevocableKeys()
    auth = Authenticator(keys, clock=clock)
    assert auth.authenticate(bearer("iek_good"), "peer") == "alice"
    keys.revoke()

    clock.now += CACHE_SECONDS
    with pytest.raises(Unauthenticated) as refused:
        auth.authenticate(bearer("iek_good"), "peer")
    assert refused.value.reason == "API_KEY_REVOKED"
    assert CACHE_SECONDS <= 5


def test_a_keys_use_is_recorded_at_most_once_a_minute() -> None:
    clock = Clock()
    keys = CountingKeys()
    auth = Authenticator(keys, clock=clock)
    for _ in range(20):  # every cache expiry looks the key up again
        auth.authenticate(bearer("iek_good"), "peer")
        clock.now += CACHE_SECONDS
    assert getattr(keys, "touched", 0) == 2  # at 0 s and at 60 s of the 100 s
