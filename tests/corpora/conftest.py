"""Shared fixtures of the corpus-recipe tests: raw corpora in their release formats."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import raw_builders  # noqa: E402


@pytest.fixture
def iemocap_raw(tmp_path: Path) -> Path:
    return raw_builders.build_iemocap(tmp_path / "raw")


@pytest.fixture
def crema_raw(tmp_path: Path) -> Path:
    return raw_builders.build_crema_d(tmp_path / "raw")


@pytest.fixture
def improv_raw(tmp_path: Path) -> Path:
    return raw_builders.build_msp_improv(tmp_path / "raw")
