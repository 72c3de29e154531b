"""End-to-end runs through objective() and the CLI: RecBole's built-in models through our entry point."""
import json

import pytest

from recbole_neggen.cli import main
from recbole_neggen.quick_start import make_run_dir, objective
from recbole_neggen.utils import get_model


@pytest.mark.parametrize("model", ["BPR", "LightGCN"])
def test_one_epoch_smoke_with_checkpoint_reload(tmp_path, model):
    result = objective(
        model,
        "ml-100k",
        config_dict={"epochs": 1, "run_root": str(tmp_path / "runs"), "eval_batch_size": 1 << 20},
        saved=True,
    )
    run_dir = tmp_path / "runs" / result["run_dir"].split("/")[-1]
    stored = json.loads((run_dir / "result.json").read_text())
    assert stored["test"] == result["test"] and set(stored["test"]) >= {"recall@20", "ndcg@20", "map@50"}
    assert stored["best_valid"]["recall@20"] == pytest.approx(stored["best_valid_score"])
    assert stored["seed"] == 999 and stored["epochs_run"] == 1 and stored["versions"]["recbole"] == "1.2.1"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "run.log").stat().st_size > 0
    checkpoint = run_dir / stored["checkpoint"].split("/")[-1]
    assert checkpoint.is_file() and checkpoint.with_name(checkpoint.name + ".sha256").is_file()
    assert not (tmp_path / "log_tensorboard").exists() and (run_dir / "tensorboard").is_dir()


def test_run_dirs_never_shared_within_one_second(tmp_path):
    dirs = {make_run_dir(tmp_path, "BPR", "ml-100k") for _ in range(20)}
    assert len(dirs) == 20


def test_unknown_model_lists_choices():
    with pytest.raises(ValueError, match="unknown model 'NoSuchModel'.*LightGCN"):
        get_model("NoSuchModel")


def test_cli_rejects_malformed_override(capsys):
    with pytest.raises(SystemExit):
        main(["--model=BPR", "--dataset=ml-100k", "epochs=3"])
    assert "--key=value" in capsys.readouterr().err
