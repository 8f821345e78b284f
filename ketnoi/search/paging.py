"""Keyset paging cursors: an opaque, signed token holding the position of a page's edge row.

A cursor is ``base64url(json).base64url(hmac)``: the sort key values, (resource_type, id) of the row,
the direction (after / before) and the ``_sort`` it belongs to. The HMAC (SHA-256, truncated to 128
bits) makes a modified cursor a 400 instead of a silently different page; the values would be bound
parameters anyway, never SQL text. Keyset pages stay correct while data changes: a page starts
strictly after the last row the client saw, so inserts and deletes before it shift nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from ketnoi.fhir.outcome import bad_request
from ketnoi.search.compile import Position

_VERSION = 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()[:16])


def encode_cursor(position: Position, sort: str, secret: bytes) -> str:
    body = {
        "v": _VERSION,
        "k": list(position.keys),
        "t": position.resource_type,
        "i": position.id,
        "b": position.before,
        "s": sort,
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii"))
    return f"{payload}.{_mac(secret, payload)}"


def _invalid() -> Exception:
    return bad_request(
        "The _cursor parameter is invalid or was modified; follow the Bundle's paging links",
        "Tham số _cursor không hợp lệ hoặc đã bị sửa; hãy dùng các liên kết phân trang của Bundle",
    )


def decode_cursor(token: str, sort: str, secret: bytes) -> Position:
    """The position a cursor encodes; 400 when it was tampered with or belongs to another ``_sort``."""
    payload, dot, mac = token.partition(".")
    if not dot or len(token) > 4096 or not payload.isascii() or not mac.isascii():
        raise _invalid()
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise _invalid()
    try:
        body: Any = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        raise _invalid() from None
    if not isinstance(body, dict) or body.get("v") != _VERSION or body.get("s") != sort:
        raise _invalid()
    keys, rtype, rid, before = body.get("k"), body.get("t"), body.get("i"), body.get("b")
    if not isinstance(keys, list) or not isinstance(rtype, str) or not isinstance(rid, str):
        raise _invalid()
    if not isinstance(before, bool) or not all(k is None or isinstance(k, (str, int, float)) for k in keys):
        raise _invalid()
    return Position(tuple(keys), rtype, rid, before)
