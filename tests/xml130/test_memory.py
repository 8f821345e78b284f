"""Memory stays bounded whatever the envelope's size (ketnoi.xml130.reader streams; docs/xml130.md "Streaming").

A generated envelope is written to disk in a loop (the test never holds it in memory), then read while
``tracemalloc`` records the peak of Python allocations. Two sizes are read: if the reader kept anything per
visit, the peak would grow with the file; it must not.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from ketnoi.xml130.reader import read_envelope
from tests.xml130.builders import DECLARATION, drug, hoso, xml1

MB = 1024 * 1024


def _write_envelope(path: Path, size: int) -> int:
    """Visits until ``size`` bytes; each visit is XML1 plus 20 drug lines (~25 KB of base64). Returns the count."""
    visit = hoso({"XML1": [xml1("LK")], "XML2": [drug("LK", n) for n in range(1, 21)]}).encode()
    count = 0
    with path.open("wb") as out:
        out.write(f"{DECLARATION}<GIAMDINHHS><THONGTINDONVI><MACSKCB>79001</MACSKCB></THONGTINDONVI>".encode())
        out.write(b"<THONGTINHOSO><DANHSACHHOSO>")
        while out.tell() < size:
            out.write(visit)
            count += 1
        out.write(b"</DANHSACHHOSO></THONGTINHOSO><CHUKYDONVI/></GIAMDINHHS>")
    return count


def _peak_while_reading(path: Path) -> tuple[int, int, float]:
    """(visits read, peak bytes allocated, seconds)."""
    started = time.perf_counter()
    tracemalloc.start()
    try:
        read = 0
        for visit in read_envelope(path):
            assert visit.problems == [] and len(visit.tables["XML2"]) == 20
            read += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return read, peak, time.perf_counter() - started


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    # 10 MB against 50 MB: five times the visits. (Measured: 100 MB gives the same 0.3 MB peak but takes ~18 s
    # under tracemalloc, which slows every allocation; 50 MB keeps the suite quicker and still proves it.)
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    small_count, large_count = _write_envelope(small, 10 * MB), _write_envelope(large, 50 * MB)
    small_read, small_peak, _ = _peak_while_reading(small)
    large_read, large_peak, _ = _peak_while_reading(large)
    assert (small_read, large_read) == (small_count, large_count)
    assert large_peak < 5 * MB, f"peak {large_peak / MB:.1f} MB for a 50 MB file"
    # Equal within noise (the parser's read buffer and one visit); a per-visit leak would be 5x.
    assert large_peak < small_peak * 1.5 + 256 * 1024, (small_peak, large_peak)
