"""One relay process for the takeover race test: connects to Redis, says
``ready``, waits for ``go`` on stdin, tries to take the stream over, says
``adopted`` or ``refused``, and (when it adopted) ``done`` once its pump
wrote the end. Usage: ``python -m tests.relay_takeover_worker REDIS_URL UPSTREAM_URL STREAM_ID PREFIX``.

With ``STREAM_ID`` ``start``, it starts a stream instead, prints its id and
pumps it until it is killed (the test SIGKILLs it mid-answer)."""

from __future__ import annotations

import sys
import threading

import holysse
from holysse.relay import RedisStore, Relay


def main() -> None:
    redis_url, upstream_url, stream_id, prefix = sys.argv[1:5]
    client = holysse.Client(api_key="hs_" + "k" * 32, base_url=upstream_url, timeout=(2, 2))
    store = RedisStore(url=redis_url, prefix=prefix, timeout=2)
    relay = Relay(client, store, poll=0.05, lease=1.0, grace=30)
    if stream_id == "start":
        started = relay.start(owner=None, model="fake-1", seed=5,
                              messages=[{"role": "user", "content": "Tell me about leases."}])
        print(started, flush=True)
        threading.Event().wait(60)  # pumping, until killed
        return
    store.info(stream_id)  # connected
    print("ready", flush=True)
    sys.stdin.readline()
    adopted = relay.adopt(stream_id)
    print("adopted" if adopted else "refused", flush=True)
    if adopted:
        pump = relay.pump(stream_id)
        if pump is not None:
            pump.done.wait(30)
        print("done", flush=True)
    else:
        threading.Event().wait(0.5)  # stays alive a moment, as a worker would
    relay.close()
    store.close()
    client.close()


if __name__ == "__main__":
    main()
