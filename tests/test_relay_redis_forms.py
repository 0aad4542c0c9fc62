"""RedisStore as Redis is deployed: a ``redis://`` URL, ``rediss://``
(TLS, the server's certificate checked), a unix socket, a ``redis.Redis``
passed in, and a client made by ``redis.Sentinel``. Each relays a whole
answer through a real redis-server."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import holysse
from holysse.relay import RedisStore, Relay
from holysse.testing import FakeServer

from .relay_support import free_port, redis_server, wait_until

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

CERT = Path(__file__).resolve().parent / "data" / "selfsigned.pem"
KEY = CERT.with_suffix(".key")
MESSAGES = [{"role": "user", "content": "Tell me about Redis."}]


@contextlib.contextmanager
def plain() -> Iterator[Any]:
    with redis_server() as url:
        yield RedisStore(url=url, timeout=2)


@contextlib.contextmanager
def tls() -> Iterator[Any]:
    port = free_port()
    with redis_server("--tls-port", str(port), "--tls-cert-file", str(CERT), "--tls-key-file", str(KEY),
                      "--tls-auth-clients", "no"):
        yield RedisStore(url=f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={CERT}", timeout=2)


@contextlib.contextmanager
def unix_socket() -> Iterator[Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "redis.sock"
        with redis_server("--unixsocket", str(path)):
            wait_until(path.exists, 5, "the unix socket")
            yield RedisStore(url=f"unix://{path}?db=0", timeout=2)


@contextlib.contextmanager
def passed_client() -> Iterator[Any]:
    import redis

    with redis_server() as url:
        yield RedisStore(redis.Redis.from_url(url, socket_timeout=2), prefix="mine")


@contextlib.contextmanager
def sentinel() -> Iterator[Any]:
    import redis

    with redis_server() as url, tempfile.TemporaryDirectory() as folder:
        master_port = int(url.rsplit(":", 1)[1].split("/")[0])
        config = Path(folder) / "sentinel.conf"
        config.write_text(f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n")
        with redis_server("--sentinel", config=str(config)) as sentinel_url:
            sentinel_port = int(sentinel_url.rsplit(":", 1)[1].split("/")[0])
            watcher = redis.Sentinel([("127.0.0.1", sentinel_port)], socket_timeout=2)
            wait_until(lambda: _discovered(watcher), 10, "the sentinel to know the master")
            yield RedisStore(watcher.master_for("mymaster", socket_timeout=2))


def _discovered(watcher: Any) -> bool:
    import redis

    try:
        return watcher.discover_master("mymaster") is not None
    except redis.RedisError:
        return False


FORMS = {"redis://": plain, "rediss://": tls, "unix://": unix_socket, "redis.Redis": passed_client,
         "Sentinel": sentinel}


@pytest.mark.parametrize("form", list(FORMS))
def test_an_answer_is_relayed_through_every_form_of_redis(form: str) -> None:
    pytest.importorskip("redis", reason="the redis client is not installed")
    # token_delay: the answer takes about a second, so the pump still holds its lease when it is checked
    with FakeServer(answer_chars=300, token_delay=0.01) as fake, FORMS[form]() as store:
        client = holysse.Client(api_key="hs_" + "k" * 32, base_url=fake.url)
        try:
            with Relay(client, store, poll=0.05) as relay:
                stream_id = relay.start(owner="me", model="fake-1", messages=MESSAGES)
                assert store.info(stream_id).holder is not None
                reader = relay.follow(stream_id, owner="me")
                assert "".join(event.text for event in reader) == fake.answers[-1]
                assert reader.finish_reason == "stop" and store.info(stream_id).ended
        finally:
            store.close()
            client.close()


def test_a_url_with_a_password_never_shows_it() -> None:
    pytest.importorskip("redis", reason="the redis client is not installed")
    store = RedisStore(url=f"rediss://:hunter2-secret@127.0.0.1:{free_port()}/0", timeout=0.2)
    began = time.monotonic()
    with pytest.raises(holysse.HolySSEError) as info:
        store.info("x" * 20)
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(store)
    assert time.monotonic() - began < 2
    store.close()
