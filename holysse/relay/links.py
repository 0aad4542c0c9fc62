"""Signed read links: let someone other than a stream's owner follow it
(another browser, a colleague, a support agent) until an expiry.

A token is ``<expiry>.<mac>``: the expiry in Unix seconds and an
HMAC-SHA256, keyed with the app's secret, of the stream id and the expiry.
It grants reading one stream, never stopping it or starting others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ..exceptions import StreamForbidden

__all__ = ["sign", "verify"]


def _mac(secret: bytes, stream_id: str, expires: str) -> str:
    digest = hmac.new(secret, f"holysse-read-link:{stream_id}:{expires}".encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(secret: bytes, stream_id: str, expires: float) -> str:
    """A token letting its holder read ``stream_id`` until ``expires`` (Unix time)."""
    stamp = str(int(expires))
    return f"{stamp}.{_mac(secret, stream_id, stamp)}"


def verify(secret: bytes, stream_id: str, token: str, now: float) -> None:
    """Check a read-link token for ``stream_id`` at time ``now``.

    :raises StreamForbidden: malformed, signed for another stream or with
        another secret, or expired.
    """
    stamp, _, mac = token.partition(".")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or not mac:
        raise StreamForbidden("This read link is malformed; ask for a new one.")
    if not hmac.compare_digest(mac.encode("ascii", "replace"), _mac(secret, stream_id, stamp).encode("ascii")):
        raise StreamForbidden("This read link is not valid for this stream; ask for a new one.")
    if int(stamp) < now:
        raise StreamForbidden("This read link has expired; ask for a new one.")
