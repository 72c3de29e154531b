"""NegGen end to end on the synthetic dataset: the bank is built once and reused, the causal equations hold,
every ablation switch trains, and per-modality logs reach result.json."""
import json

import pytest
import torch

from recbole_neggen.config import Config
from recbole_neggen.model.neggen import clip_norm
from recbole_neggen.quick_start import objective
from recbole_neggen.utils import create_dataset, data_preparation, get_model

FAST = {"epochs": 2, "neggen_encoder": "hashing", "train_batch_size": 512, "neggen_feature_dim": 16,
        "neg_params": {"n_candidates": 8, "gen_ratio": 0.5}, "learning_rate": 0.01}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return tmp_path_factory.mktemp("prepared")


def run(prepared, tmp_path, **extra):
    return objective("NegGen", "synthetic", config_dict={
        **FAST, "prepared_path": str(prepared), "run_root": str(tmp_path / "runs"), **extra})


def test_first_run_builds_bank_later_runs_reuse_it(prepared, tmp_path, caplog):
    caplog.set_level("INFO")
    first = run(prepared, tmp_path)
    bank = prepared / "synthetic" / "neggen" / "attribute-hashing-k4-seed0"
    assert (bank / "bank.jsonl").is_file() and (bank / "provenance.json").is_file()
    mtime = (bank / "bank.jsonl").stat().st_mtime_ns
    caplog.clear()
    second = run(prepared, tmp_path)
    assert (bank / "bank.jsonl").stat().st_mtime_ns == mtime
    assert "nothing to do" in caplog.text
    assert first["test"] == second["test"]  # same seed, same bank: identical results
    logs = first["epoch_logs"]
    assert len(logs) == 2 and 0.3 < logs[0]["served_generated_share"] < 0.7
    for name in ("text", "visual", "both"):
        assert logs[0][f"loss_{name}"] > 0 and logs[0][f"grad_norm_{name}"] > 0
    assert json.loads((tmp_path / "runs" / first["run_dir"].split("/")[-1] / "result.json").read_text())["epoch_logs"]


@pytest.mark.parametrize("ablation", [
    {"neggen_causal": False}, {"neggen_balance": False}, {"neggen_modalities": ["text"]},
    {"neggen_modalities": ["visual"]}, {"neggen_generated": False}, {"neggen_attention": "mha"},
    {"neg_strategy": "dns", "neg_params": {"n_candidates": 8}}, {"neg_strategy": "mixgcf", "neg_params": {"n_candidates": 8}},
    {"neg_strategy": "dens", "neg_params": {"n_candidates": 8}}, {"backbone": "mf"}, {"backbone": "freedom"},
])
def test_ablations_train(prepared, tmp_path, ablation):
    result = run(prepared, tmp_path, **ablation, epochs=1)
    assert result["test"]["recall@20"] >= 0 and result["epochs_run"] == 1
    share = result["epoch_logs"][0]["served_generated_share"]
    assert share == 0.0 if ablation.get("neggen_generated") is False or "neg_strategy" in ablation else share > 0


@pytest.mark.parametrize("attention", ["none", "mha"])
def test_generated_score_differs_only_by_the_causal_effect(prepared, attention):
    config = Config("NegGen", "synthetic", config_dict={**FAST, "prepared_path": str(prepared),
                                                        "neggen_attention": attention})
    config["checkpoint_dir"] = str(prepared / "runs")
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    model = get_model("NegGen")(config, train._dataset)
    items = torch.arange(1, model.n_items).repeat(2)[torch.randperm(2 * (model.n_items - 1))]  # repeats, any order
    for p in model.encoder.parameters():  # non-zero biases: the difference path must cancel them
        torch.nn.init.normal_(p)
    with torch.no_grad():
        item_term, offsets = model._terms(items)
        effect = clip_norm(model.projector(
            model.encoder(model.pos_text[items], model.pos_visual[items]).unsqueeze(1)
            - model.encoder(model.neg_text[items].flatten(0, 1), model.neg_visual[items].flatten(0, 1)).view(
                len(items), -1, model.backbone.embedding_size)))
        u = torch.randn(model.backbone.embedding_size)
        # s(u, g_k) - s(u, i) = <u, offset_k - item_term> = -λ <u, c_k>
        lhs = (offsets - item_term.unsqueeze(1)) @ u
        rhs = -model.lam * (effect @ u)
    mask = model.gen_mask[items]
    assert mask.any()
    assert torch.allclose(lhs[mask], rhs[mask], atol=1e-5)


def test_bad_modalities_rejected(prepared):
    config = Config("NegGen", "synthetic", config_dict={**FAST, "prepared_path": str(prepared),
                                                        "neggen_modalities": ["audio"]})
    config["checkpoint_dir"] = str(prepared / "runs")
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    with pytest.raises(ValueError, match="neggen_modalities must be a non-empty subset"):
        get_model("NegGen")(config, train._dataset)


def test_generate_command_writes_the_bank_training_reuses(tmp_path, caplog, capsys):
    from recbole_neggen.cli import main

    prepared = tmp_path / "prepared"
    assert main(["generate", "--dataset", "synthetic", "--prepared-path", str(prepared), "--encoder", "hashing",
                 "--report-items", "0"]) == 0
    assert "attribute-hashing-k4-seed0" in capsys.readouterr().out
    caplog.set_level("INFO")
    run(prepared, tmp_path, epochs=1)
    assert "nothing to do" in caplog.text
