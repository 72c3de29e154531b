"""The fast full-sort loader and top-k collector equal RecBole's originals exactly (random data, ties)."""
import pytest
import torch
from recbole.data.dataloader import FullSortEvalDataLoader
from recbole.data.utils import create_samplers
from recbole.evaluator import Collector

from recbole_neggen.config import Config
from recbole_neggen.evaluation import FullSortLoader, TopkCollector, topk_hits
from recbole_neggen.utils import create_dataset


@pytest.fixture
def random_config(tmp_path, write_atomic):
    rng = torch.Generator().manual_seed(0)
    splits = {"train": [], "valid": [], "test": []}
    for u in range(30):
        n = int(torch.randint(3, 12, (1,), generator=rng))
        items = torch.randperm(50, generator=rng)[:n].tolist()
        for split, chunk in (("train", items[:-2]), ("valid", items[-2:-1]), ("test", items[-1:])):
            splits[split] += [(f"u{u}", f"i{i}") for i in chunk]
    write_atomic(tmp_path / "prepared" / "rand", "rand", splits)
    config = Config(model="BPR", dataset="rand", config_dict={
        "prepared_path": str(tmp_path / "prepared"), "topk": [3, 5], "metrics": ["Recall", "NDCG", "Hit"],
        "eval_batch_size": 4 * 51, "run_root": str(tmp_path / "runs")})  # 4 users per batch
    return config


def test_full_sort_loader_batches_equal_recboles(random_config):
    dataset = create_dataset(random_config)
    built = dataset.build()
    samplers = create_samplers(random_config, dataset, built)
    for split, sampler in ((built[1], samplers[1]), (built[2], samplers[2]), (built[2], samplers[0])):
        ours = list(FullSortLoader(random_config, split, sampler))
        theirs = list(FullSortEvalDataLoader(random_config, split, sampler))
        assert len(ours) == len(theirs) > 1
        for (df_a, (hu_a, hi_a), pu_a, pi_a), (df_b, (hu_b, hi_b), pu_b, pi_b) in zip(ours, theirs):
            assert torch.equal(df_a["user_id"], df_b["user_id"])
            for a, b in ((hu_a, hu_b), (hi_a, hi_b), (pu_a, pu_b), (pi_a, pi_b)):
                assert torch.equal(a, b)


def test_topk_hits_equals_brute_force_loop():
    gen = torch.Generator().manual_seed(3)
    topk_idx = torch.randint(0, 9, (6, 4), generator=gen)
    positive_u = torch.tensor([0, 0, 2, 3, 3, 3, 5])  # rows 1 and 4 have none
    positive_i = torch.randint(0, 9, (7,), generator=gen)
    expected = torch.tensor([[int(any(u == b and i == item for u, i in zip(positive_u.tolist(), positive_i.tolist())))
                              for item in row] for b, row in enumerate(topk_idx.tolist())], dtype=torch.int)
    assert torch.equal(topk_hits(topk_idx, positive_u, positive_i, 9), expected)
    assert expected.sum() > 0
    empty = torch.zeros(0, dtype=torch.long)
    assert torch.equal(topk_hits(topk_idx, empty, empty, 9), torch.zeros(6, 4, dtype=torch.int))


def test_topk_collector_equals_recboles_with_ties(random_config):
    random_config["device"] = torch.device("cpu")
    ours, theirs = TopkCollector(random_config), Collector(random_config)
    gen = torch.Generator().manual_seed(1)
    for n_batches in (3, 2):  # two evaluations in a row: the second starts empty
        for batch in range(n_batches):
            scores = torch.randint(0, 4, (5, 20), generator=gen).float()  # many ties
            positive_u = torch.tensor([0, 0, 1, 3, 4, 4, 4])  # row 2 has none
            positive_i = torch.randperm(20, generator=gen)[:7]  # distinct, like a user's positive set
            for collector in (ours, theirs):
                collector.eval_batch_collect(scores, None, positive_u, positive_i)
        got, want = ours.get_data_struct(), theirs.get_data_struct()
        assert got["rec.topk"].shape == (5 * n_batches, 5 + 1)  # top-5 hits and the positive count
        assert torch.equal(got["rec.topk"], want["rec.topk"])
        assert want["rec.topk"][:, :-1].sum() > 0
