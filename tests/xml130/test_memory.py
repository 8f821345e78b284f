"""Memory stays bounded whatever the envelope's size (ketnoi.xml130.reader streams; docs/xml130.md "Streaming").

A generated envelope is written to disk in a loop (the test never holds it in memory), then read by a fresh
interpreter that reports its peak resident memory. Two sizes are read, 1 MB and 100 MB: if the reader kept
anything per visit, the peak would grow with the file; it must not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


_CHILD = """
import resource, sys
from ketnoi.xml130.reader import read_envelope
read = 0
for visit in read_envelope(sys.argv[1]):
    assert visit.problems == [] and len(visit.tables["XML2"]) == 20
    read += 1
print(read, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _peak_while_reading(path: Path) -> tuple[int, int]:
    """(visits read, peak resident memory in bytes) of a fresh interpreter that reads the envelope, so the peak
    is the whole process's (parser buffers included) and nothing read earlier in the test run counts."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True, timeout=300
    )
    read, peak = done.stdout.split()
    return int(read), int(peak)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    # 1 MB against 100 MB: a hundred times the visits. A reader that kept anything per visit, or read the
    # file whole, would need at least the file's size more memory for the large one.
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    small_count, large_count = _write_envelope(small, 1 * MB), _write_envelope(large, 100 * MB)
    small_read, small_peak = _peak_while_reading(small)
    large_read, large_peak = _peak_while_reading(large)
    assert (small_read, large_read) == (small_count, large_count)
    # Equal within noise (allocator arenas, one visit's payload); the file alone would add 100 MB.
    assert large_peak - small_peak < 16 * MB, f"{small_peak / MB:.0f} MB for 1 MB, {large_peak / MB:.0f} MB for 100 MB"
