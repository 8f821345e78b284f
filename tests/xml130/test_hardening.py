"""Hostile XML is refused before anything in it is resolved (ketnoi.xml130.reader; docs/xml130.md "Hardening").

Every case is checked both as the envelope itself and as a base64 table inside an otherwise good envelope: the
inner documents go through the same hardened parser.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ketnoi.xml130.problems import Xml130Error
from ketnoi.xml130.reader import Visit, read_checkin, read_envelope, read_table
from tests.xml130.builders import envelope, file_entry, hoso, xml1

SECRET = "KETNOI-SECRET-7f3a"
Build = Callable[[str, str], bytes]

LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]>"
)


def _xxe(target: str) -> str:
    return f'<!DOCTYPE x [<!ENTITY e SYSTEM "{target}">]>'


def _as_envelope(doctype: str, entity: str) -> bytes:
    good = envelope([hoso({"XML1": [xml1("LK1")]})])
    return good.replace(b"<GIAMDINHHS", doctype.encode() + b"<GIAMDINHHS", 1).replace(
        b"<MACSKCB>79001", f"<MACSKCB>{entity}".encode(), 1
    )


def _as_inner_table(doctype: str, entity: str) -> bytes:
    inner = f'<?xml version="1.0"?>{doctype}<TONG_HOP><MA_LK>{entity}</MA_LK></TONG_HOP>'.encode()
    return envelope([f"<HOSO>{file_entry('XML1', inner)}</HOSO>"])


@pytest.fixture()
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    path.write_text(SECRET)
    return path


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        pytest.fail(f"the reader tried to open a network connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _refused(data: bytes) -> Xml130Error:
    yielded: list[Visit] = []
    with pytest.raises(Xml130Error) as caught:
        yielded.extend(read_envelope(io.BytesIO(data)))
    assert yielded == [], "nothing of a hostile file may be read"
    assert SECRET not in str(caught.value)
    assert caught.value.rule == "xml-forbidden-construct"
    assert "DTD" in caught.value.message_en and "DTD" in caught.value.message_vi
    return caught.value


@pytest.mark.parametrize("build", [_as_envelope, _as_inner_table], ids=["envelope", "inner-table"])
def test_xxe_file_entity_is_refused(build: Build, secret_file: Path) -> None:
    for target in (secret_file.as_uri(), "file:///etc/passwd"):
        error = _refused(build(_xxe(target), "&e;"))
        assert "passwd" not in str(error)


@pytest.mark.parametrize("build", [_as_envelope, _as_inner_table], ids=["envelope", "inner-table"])
def test_http_external_entity_is_refused_without_network(build: Build) -> None:
    _refused(build(_xxe("http://169.254.169.254/latest/meta-data/"), "&e;"))
    _refused(build('<!DOCTYPE x SYSTEM "http://example.invalid/x.dtd">', ""))  # external DTD, no entity used
    _refused(build('<!DOCTYPE x [<!ENTITY % p SYSTEM "http://example.invalid/p">%p;]>', ""))  # parameter entity


@pytest.mark.parametrize("build", [_as_envelope, _as_inner_table], ids=["envelope", "inner-table"])
def test_billion_laughs_is_refused_quickly(build: Build) -> None:
    started = time.perf_counter()
    _refused(build(LAUGHS, "&lol9;"))
    assert time.perf_counter() - started < 1.0


def test_internal_dtd_without_entities_is_refused_too() -> None:
    # A claims file never has a DTD: refusing all of them leaves no room for the next trick.
    _refused(_as_envelope("<!DOCTYPE GIAMDINHHS []>", "79001"))


def test_a_hostile_table_after_good_visits_stops_the_file() -> None:
    hostile = f"<HOSO>{file_entry('XML1', (_xxe('file:///etc/passwd') + '<TONG_HOP/>').encode())}</HOSO>"
    data = envelope([hoso({"XML1": [xml1("LK1")]}), hostile, hoso({"XML1": [xml1("LK3")]})])
    visits = read_envelope(io.BytesIO(data))
    assert next(visits).ma_lk == "LK1"
    with pytest.raises(Xml130Error, match="HOSO #2"):
        next(visits)


@pytest.mark.parametrize("reader", [read_table, read_checkin])
def test_bare_documents_are_hardened(reader: Callable[[io.BytesIO], object], secret_file: Path) -> None:
    for doc in (
        f"{_xxe(secret_file.as_uri())}<TONG_HOP><MA_LK>&e;</MA_LK></TONG_HOP>",
        f"{LAUGHS}<CHI_TIEU_TRANG_THAI_KCB>&lol9;</CHI_TIEU_TRANG_THAI_KCB>",
    ):
        with pytest.raises(Xml130Error) as caught:
            reader(io.BytesIO(doc.encode()))
        assert caught.value.rule == "xml-forbidden-construct"
        assert SECRET not in str(caught.value)
