"""Negative diagnostics: hand-built cases with known answers, then runs through objective() on tiny data."""
import csv
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from recbole_neggen.config import Config
from recbole_neggen.diagnostics import (
    DIAGNOSTICS_FILE,
    MEASURES,
    cosine_to_variants,
    diversity,
    false_negatives,
    gradient_norms,
    per_type_mean,
    plot_diagnostics,
    popularity_gap,
    read_diagnostics,
    score_percentile,
)
from recbole_neggen.quick_start import objective
from recbole_neggen.sampling import CandidateSampler
from recbole_neggen.utils import create_dataset, data_preparation, get_model

BASE = {"epochs": 3, "learning_rate": 0.01, "train_batch_size": 512, "neg_diagnostics": True, "state": "WARNING"}
ITEM_MEASURES = ("percentile", "score_gap", "false_negative_share", "diversity", "popularity_gap",
                 "grad_norm_neg", "grad_share_neg")


# ------------------------------------------------------------------------------------------ pure functions
def test_top_scored_negative_has_percentile_one():
    # items 0..4, 0 = [PAD], item 3 is the user's training positive (scored highest, but not admissible)
    scores = torch.tensor([[9.0, 0.1, 0.5, 0.9, 0.3]] * 3)
    admissible = torch.tensor([[False, True, True, False, True]] * 3)
    neg = torch.tensor([0.5, 0.3, 0.0])  # the top admissible item, the middle one, below all
    assert score_percentile(scores, neg, admissible).tolist() == pytest.approx([1.0, 2 / 3, 0.0])


def test_percentile_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"must be \[B, N\], \[B, N\], \[B\]"):
        score_percentile(torch.zeros(2, 5), torch.zeros(3), torch.ones(2, 5, dtype=torch.bool))


def test_validation_positive_counts_as_false_negative():
    n_items = 10
    valid_keys = torch.tensor([0 * n_items + 5, 1 * n_items + 7])  # user 0 validates item 5, user 1 item 7
    users, items = torch.tensor([0, 1, 1, 0]), torch.tensor([5, 5, 7, 7])
    assert false_negatives(users, items, valid_keys, n_items).tolist() == [True, False, True, False]


def test_diversity_counts_distinct_over_drawn():
    assert diversity(torch.tensor([4, 4, 2, 9])) == 0.75
    assert math.isnan(diversity(torch.tensor([], dtype=torch.long)))


def test_uniform_draws_on_uniform_popularity_have_zero_gap():
    counts = torch.full((50,), 3)
    assert popularity_gap(torch.tensor([1, 2, 3]), torch.tensor([7, 8]), counts) == 0.0
    # skewed popularity: two independent uniform samples agree, a popularity sample is biased upwards
    users = torch.arange(40).repeat_interleave(5)
    items = torch.randint(1, 50, (200,), generator=torch.Generator().manual_seed(0)) ** 2 % 49 + 1
    uniform = CandidateSampler.from_pairs(users, items, 40, 50)
    popular = CandidateSampler.from_pairs(users, items, 40, 50, distribution="popularity")
    gen = torch.Generator().manual_seed(1)
    draw = torch.arange(40).repeat(50)
    a, b = uniform.sample(draw, 4, gen).flatten(), uniform.sample(draw, 4, gen).flatten()
    counts = uniform.item_counts
    assert abs(popularity_gap(a, b, counts)) < 0.05
    assert popularity_gap(popular.sample(draw, 4, gen).flatten(), b, counts) > 0.3
    expected = torch.log1p(counts.double())[a].mean() - torch.log1p(counts.double())[b].mean()
    assert popularity_gap(a, b, counts) == pytest.approx(float(expected))


def test_gradient_norms_of_bpr_by_hand():
    u = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])  # [B=2, L+1=1, d=2]
    pos = torch.zeros(2, 1, 2, requires_grad=True)
    neg = torch.tensor([[[0.0, 0.0]], [[0.0, 1.0]]], requires_grad=True)
    loss = F.softplus((u * neg).sum((1, 2)) - (u * pos).sum((1, 2))).mean()
    g_neg, g_pos = gradient_norms(loss, neg, pos)
    # dL/dn_b = sigmoid(s-_b - s+_b) u_b / B: row 0 sigmoid(0) * 1 / 2, row 1 sigmoid(2) * 2 / 2
    expected = torch.tensor([0.5 * 1 / 2, torch.sigmoid(torch.tensor(2.0)).item() * 2 / 2])
    assert torch.allclose(g_neg, expected) and torch.allclose(g_pos, expected)


def test_gradient_norm_of_unused_tensor_is_zero():
    pos = torch.ones(3, 2, requires_grad=True)
    neg = torch.ones(3, 2, requires_grad=True)
    g_neg, g_pos = gradient_norms(pos.sum(), neg, pos)
    assert g_neg.tolist() == [0.0, 0.0, 0.0] and torch.allclose(g_pos, torch.full((3,), math.sqrt(2)))


def test_cosine_and_per_type_mean():
    item = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    variants = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [-2.0, 0.0]], [[0.0, 5.0], [1.0, 0.0], [0.0, 0.0]]])
    cos = cosine_to_variants(item, variants)
    assert torch.allclose(cos, torch.tensor([[1.0, 0.0, -1.0], [1.0, 0.0, 0.0]]))
    mask = torch.tensor([[True, True, True], [True, True, False]])
    types = torch.tensor([[0, 1, 0], [2, 1, -1]])  # text, visual, text | both, visual, none
    means = per_type_mean(cos, mask, types)
    assert means["text"] == pytest.approx(0.0) and means["visual"] == 0.0 and means["both"] == 1.0
    assert math.isnan(per_type_mean(cos, mask & (types != 2), types)["both"])


# ------------------------------------------------------------------------------------------ plots, files
def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_plot_one_figure_per_defined_measure(tmp_path):
    a = write_csv(tmp_path / "a.csv", [{"epoch": e, "percentile": 0.5, "gen_cos_text": "nan"} for e in range(3)])
    b = write_csv(tmp_path / "b.csv", [{"epoch": e, "percentile": 0.9, "diversity": 0.3} for e in range(2)])
    paths = plot_diagnostics({"rns": a, "dns": b}, tmp_path / "plots")
    assert [p.name for p in paths] == ["diagnostics_percentile.png", "diagnostics_diversity.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_read_diagnostics_names_the_bad_line(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [{"epoch": 0, "percentile": 0.5}, {"epoch": 1, "percentile": "x"}])
    with pytest.raises(ValueError, match=r"bad.csv:3: not a number"):
        read_diagnostics(path)
    with pytest.raises(FileNotFoundError, match="no diagnostics file"):
        read_diagnostics(tmp_path / "missing.csv")


# ------------------------------------------------------------------------------------------ runs
def csv_of(result: dict) -> list[dict[str, float]]:
    return read_diagnostics(Path(result["run_dir"]) / DIAGNOSTICS_FILE)


def test_only_drawable_negative_is_a_validation_positive(tmp_path, write_atomic):
    # items 1-3 are trained (twice each); 4 and 5 appear only in test, so neg_pool train_items never draws
    # them: each user has seen two of items 1-3 and validates the third, its only possible negative
    rows = {"train": [("a", 1), ("a", 2), ("b", 1), ("b", 3), ("c", 2), ("c", 3)],
            "valid": [("a", 3), ("b", 2), ("c", 1)], "test": [("a", 4), ("b", 5), ("c", 4)]}
    write_atomic(tmp_path / "prep" / "hand", "hand", rows)
    result = objective("NSRec", "hand", config_dict={
        **BASE, "epochs": 2, "prepared_path": str(tmp_path / "prep"), "run_root": str(tmp_path / "runs"),
        "neg_strategy": "dns", "neg_params": {"n_candidates": 4}, "neg_pool": "train_items", "embedding_size": 8,
        "topk": [1, 2], "valid_metric": "Recall@2"})
    for row in csv_of(result):
        assert row["false_negative_share"] == 1.0
        assert row["diversity"] == 0.5  # 3 distinct negatives over 6 rows
        assert row["popularity_gap"] == 0.0  # every drawable item has the same training count
    assert result["diagnostics"]["rows"] == 6


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return tmp_path_factory.mktemp("prepared")


def run(prepared, tmp_path, model="NSRec", **extra):
    return objective(model, "synthetic", config_dict={
        **BASE, "prepared_path": str(prepared), "run_root": str(tmp_path / "runs"), **extra})


def test_dns_reports_harder_negatives_than_rns(prepared, tmp_path):
    rns = run(prepared, tmp_path, neg_strategy="rns")
    dns = run(prepared, tmp_path, neg_strategy="dns", neg_params={"n_candidates": 16})
    rns_rows, dns_rows = csv_of(rns), csv_of(dns)
    assert [r["epoch"] for r in dns_rows] == [0.0, 1.0, 2.0] and set(dns_rows[0]) == {"epoch", *ITEM_MEASURES}
    for r, d in zip(rns_rows, dns_rows):
        assert d["percentile"] > r["percentile"] + 0.2 and d["score_gap"] < r["score_gap"]
        assert 0.4 < r["percentile"] < 0.6  # uniform negatives sit mid-ranking
    stored = json.loads((Path(dns["run_dir"]) / "result.json").read_text())["diagnostics"]
    assert stored["best_epoch"] == {**dns_rows[dns["best_epoch"]]} and stored["last_epoch"] == dns_rows[-1]
    assert stored["rows"] == 2048 and stored["seconds_per_epoch"] > 0


def test_diagnostics_leave_training_untouched(prepared, tmp_path):
    # dns_mn draws from the model's generator: a measurement pass that consumed it would change training
    extra = {"neg_strategy": "dns_mn", "neg_params": {"n_candidates": 8, "top_n": 3}, "epochs": 2}
    on, off = run(prepared, tmp_path, **extra), run(prepared, tmp_path, **{**extra, "neg_diagnostics": False})
    assert on["test"] == off["test"] and on["valid_history"] == off["valid_history"]
    assert off["diagnostics"] is None and not (Path(off["run_dir"]) / DIAGNOSTICS_FILE).exists()


def test_models_without_strategy_skip_diagnostics(tmp_path, caplog):
    caplog.set_level("WARNING")
    result = objective("BPR", "ml-100k", config_dict={"epochs": 1, "neg_diagnostics": True,
                                                     "run_root": str(tmp_path / "runs"), "eval_batch_size": 1 << 20})
    assert result["diagnostics"] is None and "neg_diagnostics ignored" in caplog.text


NEGGEN = {"neggen_encoder": "hashing", "neggen_feature_dim": 16, "neg_params": {"n_candidates": 8, "gen_ratio": 0.5}}


def test_neggen_reports_generated_measures_without_changing_training(prepared, tmp_path):
    on = run(prepared, tmp_path, model="NegGen", epochs=1, **NEGGEN)
    off = run(prepared, tmp_path, model="NegGen", epochs=1, **NEGGEN, neg_diagnostics=False)
    assert on["test"] == off["test"] and on["epoch_logs"] == off["epoch_logs"]
    rows = csv_of(on)
    assert len(rows) == 1 and set(rows[0]) == {"epoch", *MEASURES}
    for row in rows:
        assert 0.3 < row["gen_served_share"] < 0.7
        for t in ("text", "visual", "both"):
            assert -1 <= row[f"gen_cos_{t}"] <= 1 and row[f"gen_loss_{t}"] > 0 and row[f"gen_changes_{t}"] >= 1


def test_neggen_change_counts_follow_the_bank(prepared):
    config = Config("NegGen", "synthetic", config_dict={**NEGGEN, "prepared_path": str(prepared)})
    config["checkpoint_dir"] = str(prepared / "runs")
    train, _, _ = data_preparation(config, create_dataset(config))
    model = get_model("NegGen")(config, train._dataset)
    from recbole_neggen.generation.bank import NegativeBank

    bank = NegativeBank.open(prepared / "synthetic" / "neggen" / "attribute-hashing-k4-seed0")
    tokens = train._dataset.field2id_token[train._dataset.iid_field]
    checked = 0
    for i in range(1, len(tokens)):
        entry = bank.entry(tokens[i])
        expected = [len(v.changes) for v in entry.variants] if entry is not None and entry.row is not None else []
        expected += [0] * (model.n_changes.shape[1] - len(expected))
        assert model.n_changes[i].tolist() == expected
        checked += bool(sum(expected))
    assert checked > 0
