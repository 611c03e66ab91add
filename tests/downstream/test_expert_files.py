"""The expert's evaluation files: ``probs.csv`` as pandas wrote it."""

import numpy as np
import pandas as pd

from s3prl_emo.downstream.expert import _probs_csv


def test_probs_csv_is_pandas_to_csv_byte_for_byte():
    names = ["Ses01F_impro01_F000", "a,b", 'say "hi"', " spaced ", "x\ny"]
    probs = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    probs[1, 2], probs[2, 0] = np.nan, -0.0
    classes = ("Angry", "Happy,ish", "Neutral")
    table = pd.DataFrame(probs, columns=list(classes))
    table.insert(0, "FileName", names)
    assert _probs_csv(names, probs, classes) == table.to_csv(index=False, float_format="%.6f")
