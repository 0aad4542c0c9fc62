"""The page at ``/`` and the relay under ``/holysse/``."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import ensure_csrf_cookie

from holysse.relay.django import relay_urls
from upstream import make_relay

relay, defaults = make_relay()
page = (settings.EXAMPLES / "chat.html").read_bytes()


@ensure_csrf_cookie  # the page sends it back as X-CSRFToken
def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(page, content_type="text/html; charset=utf-8")


urlpatterns = [
    path("", index),
    path("holysse/", include(relay_urls(relay, **defaults))),
]
