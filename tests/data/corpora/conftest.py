"""Shared fixtures of the corpus-recipe tests: raw corpora in their release formats (``raw_fixtures``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import raw_fixtures


@pytest.fixture
def iemocap_raw(tmp_path: Path) -> Path:
    return raw_fixtures.build_iemocap(tmp_path / "raw")


@pytest.fixture
def crema_raw(tmp_path: Path) -> Path:
    return raw_fixtures.build_crema_d(tmp_path / "raw")


@pytest.fixture
def improv_raw(tmp_path: Path) -> Path:
    return raw_fixtures.build_msp_improv(tmp_path / "raw")


@pytest.fixture
def nnime_raw(tmp_path: Path) -> Path:
    return raw_fixtures.build_nnime(tmp_path / "raw")


@pytest.fixture
def generic_raw(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(audio folder, votes.csv, meta.csv)."""
    return raw_fixtures.build_generic(tmp_path / "in")
