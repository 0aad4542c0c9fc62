"""The Django example (``manage.py runserver``) relays an answer, with
Django's CSRF protection and the session binding in force."""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest
import requests

from holysse.testing import FakeServer

from .relay_support import EXAMPLES, Process, free_port, read_events, text_of, wait_port

MESSAGES = {"messages": [{"role": "user", "content": "Tell me about Django."}]}


@pytest.fixture
def django_example() -> Iterator[tuple[str, FakeServer]]:
    pytest.importorskip("django", reason="django is not installed (pip install 'holysse[django]')")
    with FakeServer(answer_chars=300) as fake:
        port = free_port()
        env = dict(os.environ, HOLYSSE_UPSTREAM_URL=fake.url, HOLYSSE_POLL="0.1", DJANGO_DEBUG="0")
        env.pop("HOLYSHEEP_API_KEY", None)
        process = Process([sys.executable, str(EXAMPLES / "django_app" / "manage.py"), "runserver", "--noreload",
                           f"127.0.0.1:{port}"], env=env)
        try:
            wait_port(port, 20, process)
            yield f"http://127.0.0.1:{port}", fake
        finally:
            process.stop()


def test_the_django_example_relays_an_answer_to_its_session_only(django_example: tuple[str, FakeServer]) -> None:
    base, fake = django_example
    browser = requests.Session()
    page = browser.get(base + "/", timeout=5)
    assert page.status_code == 200 and "holysse/holysse.js" in page.text
    assert browser.post(base + "/holysse/streams", json=MESSAGES, timeout=5).status_code == 403  # no CSRF token
    csrf = {"X-CSRFToken": browser.cookies["csrftoken"], "Referer": base + "/"}
    started = browser.post(base + "/holysse/streams", json=MESSAGES, headers=csrf, timeout=5)
    assert started.status_code == 201, started.text
    stream_url = f"{base}/holysse/streams/{started.json()['id']}"
    response = browser.get(stream_url, stream=True, timeout=5)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["X-Accel-Buffering"] == "no"
    events = read_events(response)
    assert text_of(events) == fake.answers[-1] and events[-1].event == "finish"
    assert requests.get(stream_url, timeout=5).status_code == 403
    script = browser.get(base + "/holysse/holysse.js", timeout=5)
    assert script.status_code == 200 and b"HolySSE" in script.content
