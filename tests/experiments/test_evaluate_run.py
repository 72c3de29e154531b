"""evaluate_run: rebuilds a run from its checkpoint, reproduces objective()'s test metrics, evaluates once."""
import json

import pytest

from recbole_neggen.experiments.evaluate import TEST_RESULT, evaluate_run, find_checkpoint
from recbole_neggen.quick_start import objective


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    config = {"backbone": "lightgcn", "neg_strategy": "dns", "neg_params": {"n_candidates": 4}, "epochs": 2,
              "learning_rate": 0.01, "train_batch_size": 512, "run_root": str(root / "runs"),
              "prepared_path": str(root / "dataset")}
    return objective("NSRec", "synthetic", config_dict=config, saved=True, evaluate_test=True)


def test_reproduces_objective_test_metrics_and_stores_them_once(finished_run):
    run_dir = finished_run["run_dir"]
    first = evaluate_run(run_dir)
    assert first["test"] == finished_run["test"]
    assert first["checkpoint"] == finished_run["checkpoint"] and first["epoch"] == finished_run["best_epoch"]
    stored = json.loads(open(f"{run_dir}/{TEST_RESULT}").read())
    assert stored == first
    # A second call returns the stored result instead of touching the test split again.
    with open(f"{run_dir}/{TEST_RESULT}", "w") as handle:
        json.dump({**stored, "test": {"recall@20": -1.0}}, handle)
    assert evaluate_run(run_dir)["test"] == {"recall@20": -1.0}


def test_finds_checkpoint_without_result_json(tmp_path, finished_run):
    # A trial stopped by the scheduler leaves a checkpoint (with its sidecar) but no result.json.
    run_dir = tmp_path / "stopped"
    run_dir.mkdir()
    source = finished_run["checkpoint"]
    for suffix in ("", ".sha256"):
        (run_dir / f"model.pth{suffix}").write_bytes(open(source + suffix, "rb").read())
    assert find_checkpoint(run_dir) == run_dir / "model.pth"
    assert evaluate_run(run_dir)["test"] == finished_run["test"]


def test_refuses_untrusted_or_missing_checkpoints(tmp_path, finished_run):
    run_dir = tmp_path / "untrusted"
    run_dir.mkdir()
    with pytest.raises(FileNotFoundError, match="expected one checkpoint"):
        find_checkpoint(run_dir)
    (run_dir / "model.pth").write_bytes(open(finished_run["checkpoint"], "rb").read())
    (run_dir / "model.pth.sha256").write_text("0" * 64 + "\n")
    with pytest.raises(ValueError, match="does not match"):
        evaluate_run(run_dir)
