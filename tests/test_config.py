"""Settings from the environment (ketnoi.config): a bad value is one clear ConfigError naming the variable."""

from __future__ import annotations

import pytest

from ketnoi.config import ConfigError, Settings, from_env


def test_export_part_resources_is_a_positive_whole_number() -> None:
    assert from_env({}).export_part_resources == Settings().export_part_resources == 100_000
    assert from_env({"KETNOI_EXPORT_PART_RESOURCES": "2500"}).export_part_resources == 2500
    for bad in ("0", "-3", "1.5", "many"):
        with pytest.raises(ConfigError, match="KETNOI_EXPORT_PART_RESOURCES must be a"):
            from_env({"KETNOI_EXPORT_PART_RESOURCES": bad})
