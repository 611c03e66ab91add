"""The S3PRL dataset of the downstream: items of one split of a fold (``data.fold``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch.utils.data import Dataset

from ..data.fold import AudioStore, Normalizer


class EmotionDataset(Dataset):
    """Items are ``(waveform, soft_label, file_name)``; ``collate`` keeps them as lists.

    With ``attributes`` (the attribute task) a label row holds the soft label, then the
    attribute values (EmoAct, ...): one array, so every consumer of ``labels`` (the one-pass
    store's datasets among them) carries both.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        classes: tuple[str, ...],
        store: AudioStore,
        normalize: Normalizer,
        attributes: tuple[str, ...] = (),
    ):
        self.names = frame["FileName"].tolist()
        self.labels = frame[[*classes, *attributes]].to_numpy(dtype=np.float32)
        self.store = store
        self.normalize = normalize

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int):
        name = self.names[index]
        return self.normalize(self.store.get(name)), self.labels[index], name

    @staticmethod
    def collate(batch):
        wavs, labels, names = zip(*batch, strict=True)
        return list(wavs), np.stack(labels), list(names)
