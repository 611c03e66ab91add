"""The EMO-SUPERB paper's Table 3 (test macro-F1), shipped as ``published_table3.csv``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TABLE3 = Path(__file__).with_name("published_table3.csv")
CONDITIONS = (
    "IMPROV_P",
    "CREMA-D",
    "PODCAST_P",
    "BPODCAST_P",
    "IEMOCAP",
    "NNIME",
    "IMPROV_S",
    "PODCAST_S",
    "BPODCAST_S",
)


def published_table() -> pd.DataFrame:
    """One row per upstream (indexed by the S3PRL name), columns ``Average`` and the nine conditions."""
    return pd.read_csv(TABLE3, comment="#").set_index("upstream")
