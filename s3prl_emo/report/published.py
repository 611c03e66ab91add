"""The EMO-SUPERB paper's Table 3 (test macro-F1), shipped as ``published_table3.csv``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..data.corpora import published_conditions

TABLE3 = Path(__file__).with_name("published_table3.csv")
# The nine conditions, as the corpus recipes declare them (``Corpus.published``), in registry order;
# the CSV's columns are in the paper's order.
CONDITIONS = tuple(published_conditions())


def published_table() -> pd.DataFrame:
    """One row per upstream (indexed by the S3PRL name), columns ``Average`` and the nine conditions."""
    return pd.read_csv(TABLE3, comment="#").set_index("upstream")
