from __future__ import annotations

import re

import pytest
import redis.asyncio.sentinel
import redis.sentinel

from imageeditor.core.adapters.redis.connection import async_redis_client, redis_client
from imageeditor.core.errors import InvalidArgument
from imageeditor.core.sentinel_url import SentinelTarget, parse_sentinel_url


def test_several_sentinels_a_service_and_a_database() -> None:
    target = parse_sentinel_url("redis+sentinel://s1:26380,s2:26381,s3/mymaster/2")
    assert target == SentinelTarget(
        hosts=(("s1", 26380), ("s2", 26381), ("s3", 26379)), service_name="mymaster", db=2
    )


def test_ipv6_sentinels_with_and_without_a_port() -> None:
    target = parse_sentinel_url("redis+sentinel://[::1]:26390,[fe80::2]/cache")
    assert target.hosts == (("::1", 26390), ("fe80::2", 26379))
    assert target.db == 0


def test_passwords_from_the_query_or_the_userinfo() -> None:
    target = parse_sentinel_url(
        "redis+sentinel://s1/mymaster?password=p%40ss&sentinel_password=s3cret"
    )
    assert (target.password, target.sentinel_password) == ("p@ss", "s3cret")
    assert parse_sentinel_url("redis+sentinel://:p%3Ass@s1/mymaster").password == "p:ss"
    assert parse_sentinel_url("redis+sentinel://s1/mymaster").password is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://s1:26379", "service name is missing"),
        ("redis+sentinel://s1:26379/", "service name is missing"),
        ("redis+sentinel://s1/mymaster/zero", "database must be a number"),
        ("redis+sentinel://s1/mymaster/0/extra", "service_name[/db]"),
        ("redis+sentinel://s1:port/mymaster", "bad port"),
        ("redis+sentinel://s1:70000/mymaster", "bad port"),
        ("redis+sentinel://[::1/mymaster", "bad IPv6"),
        ("redis+sentinel://s1,,s2/mymaster", "host is missing"),
        ("redis+sentinel://s1/mymaster?pasword=x", "unknown option"),
        ("redis://s1/mymaster", "expected a redis+sentinel:// URL"),
    ],
)
def test_a_bad_url_says_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(problem)) as error:
        parse_sentinel_url(url)
    assert error.value.reason == "BAD_SETTING"


def test_an_error_never_shows_a_password() -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_sentinel_url("redis+sentinel://:hunter2@s1:bad/m?sentinel_password=hunter3")
    assert "hunter" not in str(error.value)


def test_a_sentinel_url_gives_a_client_of_the_primary_without_connecting() -> None:
    client = redis_client("redis+sentinel://:pw@s1,s2:26380/mymaster/3?sentinel_password=sp")
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (3, "pw")
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    assert sentinels[0].connection_pool.connection_kwargs["password"] == "sp"
    async_client = async_redis_client("redis+sentinel://s1/mymaster")
    assert isinstance(async_client.connection_pool, redis.asyncio.sentinel.SentinelConnectionPool)


def test_plain_urls_get_timeouts_and_retries() -> None:
    options = redis_client("rediss://cache.internal:6380/1").connection_pool.connection_kwargs
    assert options["socket_timeout"] > 0 and options["socket_connect_timeout"] > 0
    assert options["health_check_interval"] > 0
    assert options["retry"].get_retries() > 0


def test_other_schemes_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="expected redis://"):
        redis_client("http://cache.internal:6379")
