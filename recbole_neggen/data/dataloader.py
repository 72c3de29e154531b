"""Training loader that attaches negative candidates ``neg_cand [B, C]`` to every positive row."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from recbole.data.dataloader import TrainDataLoader
from recbole.data.interaction import Interaction

from recbole_neggen.sampling import CandidateSampler

NEG_CAND = "neg_cand"


class CandidateTrainLoader(TrainDataLoader):
    """RecBole's ``TrainDataLoader`` whose batches carry ``neg_cand`` ``[B, C]`` instead of repeated rows.

    Every batch keeps ``train_batch_size`` positive rows (RecBole's ``sample_num > 1`` would shrink it).
    Candidates are drawn, vectorised, from items outside the user's training set with the distribution
    and count the configured strategy asks for (``config.args.candidate_spec``); the model selects among
    them inside its loss. The generator is seeded from ``config['seed']``, so runs are reproducible.
    """

    def __init__(self, config: Any, dataset: Any, sampler: Any, shuffle: bool = False) -> None:
        spec = config.args.candidate_spec(config["embedding_size"])
        users = dataset.inter_feat[dataset.uid_field]
        items = dataset.inter_feat[dataset.iid_field]
        self.candidates = CandidateSampler.from_pairs(
            users, items, dataset.user_num, dataset.item_num,
            distribution=spec.distribution, alpha=spec.pop_alpha, pool=config.args.neg_pool,
        )
        self.n_candidates = spec.n_candidates
        self.generator = torch.Generator().manual_seed(int(config["seed"]))
        super().__init__(config, dataset, sampler, shuffle=shuffle)

    def _init_batch_size_and_step(self) -> None:
        batch_size = self.config["train_batch_size"]
        self.step = batch_size
        self.set_batch_size(batch_size)

    def collate_fn(self, index: Any) -> Interaction:
        data = self._dataset[np.asarray(index)]
        users = data[self._dataset.uid_field]
        data.update(Interaction({NEG_CAND: self.candidates.sample(users, self.n_candidates, self.generator)}))
        return data
