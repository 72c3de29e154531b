"""Full-ranking metrics and the two test-masking protocols, against values worked out by hand.

Tiny fixed split (RecBole ids equal the tokens: first-seen order is 1..5):
    user A: train {1, 2}, valid {3}, test {4}        scores over items 1..5: [5, 4, 3, 2, 1]
    user B: train {1},    valid {2}, test {3, 5}     scores over items 1..5: [1, 5, 4, 3, 2]
mmrec masks training items only at test:   A ranks [3, 4, 5], B ranks [2, 3, 4, 5]
recbole masks training + validation items: A ranks [4, 5],    B ranks [3, 4, 5]
"""
import math

import pytest
import torch
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType

from recbole_neggen.config import Config
from recbole_neggen.trainer import Trainer
from recbole_neggen.utils import create_dataset, data_preparation

SCORES = {"A": [5.0, 4.0, 3.0, 2.0, 1.0], "B": [1.0, 5.0, 4.0, 3.0, 2.0]}
G = 1 / math.log2(3)  # discount of rank 2
H = 1 / math.log2(4)  # discount of rank 3

EXPECTED = {
    "mmrec": {
        # A: test item 4 at rank 2; B: test items {3, 5}, item 3 at rank 2, item 5 at rank 4
        "recall@1": 0.0, "recall@2": (1 + 0.5) / 2, "recall@3": (1 + 0.5) / 2,
        "ndcg@2": (G / 1 + G / (1 + G)) / 2, "ndcg@3": (G + G / (1 + G)) / 2,
        "precision@2": 0.5, "precision@3": 1 / 3,
        "map@2": (0.5 / 1 + 0.5 / 2) / 2,
    },
    "recbole": {
        # A: item 4 at rank 1; B: item 3 at rank 1, item 5 at rank 3
        "recall@1": (1 + 0.5) / 2, "recall@2": (1 + 0.5) / 2, "recall@3": (1 + 1) / 2,
        "ndcg@2": (1 + 1 / (1 + G)) / 2, "ndcg@3": (1 + (1 + H) / (1 + G)) / 2,
        "precision@2": 0.5, "precision@3": (1 / 3 + 2 / 3) / 2,
        "map@2": (1 + 1 / 2) / 2,
    },
}


class FixedScores(GeneralRecommender):
    """Scores from a fixed table; one dummy parameter so a Trainer can be built."""

    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.register_buffer("table", self.make_table(dataset))
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def make_table(self, dataset):
        table = torch.zeros(self.n_users, self.n_items)
        for user, scores in SCORES.items():
            uid = dataset.token2id(self.USER_ID, user)
            for token, score in zip("12345", scores):
                table[uid, dataset.token2id(self.ITEM_ID, token)] = score
        return table

    def calculate_loss(self, interaction):
        return self.dummy.sum()

    def predict(self, interaction):
        return self.table[interaction[self.USER_ID], interaction[self.ITEM_ID]]

    def full_sort_predict(self, interaction):
        return self.table[interaction[self.USER_ID]].reshape(-1)


@pytest.fixture
def tiny_root(tmp_path, write_atomic):
    write_atomic(
        tmp_path / "prepared" / "tiny",
        "tiny",
        {
            "train": [("A", 1), ("A", 2), ("B", 1)],
            "valid": [("A", 3), ("B", 2)],
            "test": [("A", 4), ("B", 3), ("B", 5)],
        },
    )
    return tmp_path


@pytest.mark.parametrize("protocol", ["mmrec", "recbole"])
def test_full_sort_metrics_match_hand_computed(tiny_root, protocol):
    config = Config(
        model=FixedScores,
        dataset="tiny",
        config_dict={
            "data_path": str(tiny_root / "missing"),
            "prepared_path": str(tiny_root / "prepared"),
            "eval_protocol": protocol,
            "topk": [1, 2, 3],
            "metrics": ["Recall", "NDCG", "Precision", "MAP"],
            "metric_decimal_place": 6,
            "run_root": str(tiny_root / "runs"),
        },
    )
    config["checkpoint_dir"] = str(tiny_root / "runs")
    dataset = create_dataset(config)
    assert [dataset.id2token("item_id", i) for i in range(1, 6)] == list("12345")
    _, _, test = data_preparation(config, dataset)
    model = FixedScores(config, dataset)
    result = Trainer(config, model).evaluate(test, load_best_model=False)
    for key, value in EXPECTED[protocol].items():
        assert result[key] == pytest.approx(value, abs=1e-6), key


def test_unknown_eval_protocol_is_rejected(tiny_root):
    with pytest.raises(ValueError, match="eval_protocol must be one of"):
        Config(model="BPR", dataset="tiny", config_dict={"eval_protocol": "sampled"})


def naive_metrics(table, train, test, k):
    """Per-user Python loop: mask training items (mmrec), rank, Recall@k and NDCG@k, averaged over test users."""
    recalls, ndcgs = [], []
    for user, positives in test.items():
        ranked = sorted((i for i in range(1, table.shape[1]) if i not in train.get(user, set())),
                        key=lambda i: -float(table[user, i]))[:k]
        hits = [1.0 if i in positives else 0.0 for i in ranked]
        recalls.append(sum(hits) / len(positives))
        ideal = sum(1 / math.log2(r + 2) for r in range(min(len(positives), k)))
        ndcgs.append(sum(h / math.log2(r + 2) for r, h in enumerate(hits)) / ideal)
    return sum(recalls) / len(recalls), sum(ndcgs) / len(ndcgs)


class RandomScores(FixedScores):
    """Continuous random scores (no ties), seeded."""

    def make_table(self, dataset):
        return torch.rand(self.n_users, self.n_items, generator=torch.Generator().manual_seed(1))


def test_batched_full_sort_equals_naive_loop_on_random_data(tmp_path, write_atomic):
    rng = torch.Generator().manual_seed(0)
    n_users, n_items = 40, 60
    splits = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        items = torch.randperm(n_items, generator=rng)[:8].tolist()
        for split, chunk in (("train", items[:5]), ("valid", items[5:6]), ("test", items[6:])):
            splits[split] += [(f"u{u}", f"i{i}") for i in chunk]
    write_atomic(tmp_path / "prepared" / "rand", "rand", splits)
    config = Config(model=RandomScores, dataset="rand", config_dict={
        "prepared_path": str(tmp_path / "prepared"), "topk": [5, 10], "metrics": ["Recall", "NDCG"],
        "metric_decimal_place": 8, "eval_batch_size": 7 * 61, "run_root": str(tmp_path / "runs")})  # several batches
    config["checkpoint_dir"] = str(tmp_path / "runs")
    dataset = create_dataset(config)
    _, _, test = data_preparation(config, dataset)
    model = RandomScores(config, dataset)
    result = Trainer(config, model).evaluate(test, load_best_model=False)
    uid = lambda u: dataset.token2id("user_id", u)  # noqa: E731
    iid = lambda i: dataset.token2id("item_id", i)  # noqa: E731
    train, positives = {}, {}
    for u, i in splits["train"]:
        train.setdefault(uid(u), set()).add(iid(i))
    for u, i in splits["test"]:
        positives.setdefault(uid(u), set()).add(iid(i))
    for k in (5, 10):
        recall, ndcg = naive_metrics(model.table, train, positives, k)
        assert result[f"recall@{k}"] == pytest.approx(recall, abs=1e-6)
        assert result[f"ndcg@{k}"] == pytest.approx(ndcg, abs=1e-6)


def test_trainer_adam_is_fused_and_steps_like_the_reference(tiny_root):
    config = Config(model=FixedScores, dataset="tiny", config_dict={
        "prepared_path": str(tiny_root / "prepared"), "run_root": str(tiny_root / "runs"),
        "learning_rate": 0.01, "weight_decay": 0.001})
    config["checkpoint_dir"] = str(tiny_root / "runs")
    model = FixedScores(config, create_dataset(config))
    trainer = Trainer(config, model)
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    assert [group["fused"] for group in trainer.optimizer.param_groups] == [True]
    reference = torch.nn.Parameter(model.dummy.detach().clone())
    plain = torch.optim.Adam([reference], lr=0.01, weight_decay=0.001)
    for step in range(3):
        for param, opt in ((model.dummy, trainer.optimizer), (reference, plain)):
            param.grad = torch.full_like(param, 0.5 + step)
            opt.step()
    torch.testing.assert_close(model.dummy.detach(), reference.detach())
