"""The cache contract run against LayeredSignatureCache (sync)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from sigcache.layered import LayeredSignatureCache
from tests.contract import CacheContract, FakeClock


class TestLayeredContract(CacheContract):
    """The contract with the layered cache's two deliberate differences switched on."""

    owner_strict: ClassVar[bool] = True  # an owned entry never answers a caller without owner
    provenance_strict: ClassVar[bool] = True
    prefix_collisions: ClassVar[bool] = False  # the whole normalised text is the key

    @pytest.fixture(autouse=True)
    def _db_dir(self, tmp_path: Path) -> None:
        self.db_dir = tmp_path

    def make_cache(self, clock: FakeClock) -> Any:
        return LayeredSignatureCache(self.db_dir / "contract.db", clock=clock)
