"""Interpreter settings: the server settles its heap; a bulk load restores what it changes."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from ketnoi import runtime


@pytest.fixture
def restored() -> Iterator[None]:
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.set_threshold(*threshold)
    sys.setswitchinterval(interval)


def test_settle_heap_freezes_start_up_objects_and_collects_less_often(restored: None) -> None:
    kept = [{"start-up": i} for i in range(1000)]
    runtime.settle_heap()
    assert gc.get_threshold() == runtime.GC_THRESHOLD
    assert gc.get_freeze_count() >= len(kept)


@pytest.mark.parametrize("settled_before", [False, True], ids=["cli", "inside-a-server"])
def test_bulk_mode_changes_settings_inside_and_restores_them(restored: None, settled_before: bool) -> None:
    gc.set_threshold(700, 10, 10)
    if settled_before:
        gc.freeze()  # a server settled its heap: the load must leave that frozen
    else:
        gc.unfreeze()
    # Frozen objects can die (the count falls): compare whether anything is frozen, not how much.
    before = gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count() > 0
    with pytest.raises(RuntimeError), runtime.bulk_mode():
        assert gc.get_threshold() == runtime.GC_THRESHOLD
        assert sys.getswitchinterval() < 0.001
        assert gc.get_freeze_count() > 0
        raise RuntimeError("the load failed")
    assert (gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count() > 0) == before
