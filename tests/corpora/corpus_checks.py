"""Assertions shared by the corpus-recipe tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

EXPECTED = Path(__file__).parent / "expected"


def assert_frame_matches(frame: pd.DataFrame, expected_csv: str) -> None:
    """``frame`` equals the hand-written CSV: same columns and rows, numbers within 1e-5.

    (The label files are written with 6 significant digits, so 2.333333 is stored as 2.33333.)
    """
    expected = pd.read_csv(EXPECTED / expected_csv, dtype={"SpkrID": str})
    assert list(frame.columns) == list(expected.columns)
    assert list(frame["FileName"]) == list(expected["FileName"])
    numeric = [c for c in expected.columns if c not in ("FileName", "SpkrID", "Gender", "Split_Set")]
    np.testing.assert_allclose(frame[numeric].to_numpy(float), expected[numeric].to_numpy(float), atol=1e-5)
    for column in ("SpkrID", "Gender", "Split_Set"):
        assert list(frame[column].astype(str)) == list(expected[column]), column


def assert_nothing_written(out: Path) -> None:
    """A failed run leaves no corpus and no staging folder behind."""
    assert not out.exists() or list(out.iterdir()) == []
