"""A launch through the consumer with the Redis channel layer (a real redis-server on loopback)."""

import asyncio

import pytest
from channels.layers import channel_layers

from optsite.settings import channel_layers as configured_layers
from tests import servers
from tests.test_consumers import (DE_SPEC, LONG_SPEC, assert_bulky_only_on_each_messages_last_step, collect,
                                  complete_steps, connect, light, seqs, start, stored, until_steps)

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_passwords", "workers"),
    pytest.mark.skipif(servers.redis_binary() is None,
                       reason="redis-server is not installed (make test installs Debian's redis-server)"),
]


@pytest.fixture(scope="module")
def redis_url():
    with servers.redis_server() as url:
        yield url


@pytest.fixture
def redis_layer(redis_url, settings):
    settings.CHANNEL_LAYERS = configured_layers(redis_url)  # the same layer a server gets from REDIS_URL
    channel_layers.backends.clear()  # override_settings resets it too; be explicit
    yield
    channel_layers.backends.clear()


async def test_a_run_launched_over_redis_streams_to_its_socket_and_a_watcher(alice, redis_layer):
    from channels_redis.core import RedisChannelLayer

    assert isinstance(channel_layers["default"], RedisChannelLayer)
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, DE_SPEC)
    watch = await connect(f"/ws/runs/{run['id']}/?after=-1", alice)
    launched, watched = await collect(comm), await collect(watch)
    n = launched[-1]["run"]["n_steps"]
    assert launched[-1]["run"]["status"] == "finished" and n > 40
    assert seqs(launched) == seqs(watched) == list(range(n))
    assert [light(s) for m in launched if m["type"] == "steps" for s in m["steps"]] == await stored(run["id"])
    expected = await asyncio.to_thread(complete_steps, DE_SPEC)
    assert assert_bulky_only_on_each_messages_last_step(launched, expected) >= 1
    assert assert_bulky_only_on_each_messages_last_step(watched, expected) >= 1
    await comm.disconnect()
    await watch.disconnect()


async def test_controls_work_over_redis(alice, redis_layer):
    comm = await connect("/ws/runs/", alice)
    await start(comm, LONG_SPEC)
    await until_steps(comm)
    await comm.send_json_to({"type": "pause"})
    assert (await collect(comm, until="status"))[-1]["run"]["status"] == "paused"
    assert await comm.receive_nothing(timeout=0.3)
    await comm.send_json_to({"type": "stop"})
    assert (await collect(comm))[-1]["run"]["status"] == "stopped"
    await comm.disconnect()
