"""tune: a 2-trial Ray Tune sweep on CPU (ASHA, per-epoch validation reports), test only for the best trial,
one run directory per trial, absolute paths, no worker argv in the config; rerunning restores the sweep."""
import csv
import json
from pathlib import Path

import pytest
import yaml

from recbole_neggen.experiments import tune
from recbole_neggen.experiments.evaluate import TEST_RESULT

SPACE = """\
model: NSRec
dataset: synthetic
config: {backbone: mf, epochs: 3, train_batch_size: 512}
space:
  learning_rate: {grid: [0.0005, 0.05]}
scheduler: {grace_period: 1, reduction_factor: 2}
report_metrics: [recall@20, ndcg@20]
"""


def final_rows(out):
    with open(out / "final.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_two_trial_sweep_then_restore(tmp_path, capsys):
    space, out = tmp_path / "space.yaml", tmp_path / "out"
    space.write_text(SPACE)
    argv = ["--space", str(space), "--out", str(out), "--num-cpus", "2", "--cpus", "1", "--verbose", "0"]
    assert tune.main(argv) == 0

    rows = final_rows(out)
    assert len(rows) == 2 and {r["param learning_rate"] for r in rows} == {"0.0005", "0.05"}
    best = [r for r in rows if r["best"] == "yes"]
    assert len(best) == 1 and best[0] == rows[0]
    assert float(best[0]["valid_recall@20"]) == max(float(r["valid_recall@20"]) for r in rows)
    test = json.loads((Path(best[0]["run_dir"]) / TEST_RESULT).read_text())
    assert float(best[0]["test_recall@20"]) == test["test"]["recall@20"] and best[0]["test_ndcg@20"]
    other = rows[1]
    assert other["test_recall@20"] == "" and not (Path(other["run_dir"]) / TEST_RESULT).exists()
    for row in rows:
        run_dir = Path(row["run_dir"])
        assert run_dir.parent == out / "runs" / row["trial_id"]  # one run root per trial: no collisions
        assert Path(row["checkpoint"]).parent == run_dir and row["status"] != "no report"
        result = run_dir / "result.json"  # written only when objective returned (not stopped by the scheduler)
        assert not result.exists() or json.loads(result.read_text())["test"] is None
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["run_root"] == str(out / "runs" / row["trial_id"]) and Path(config["data_path"]).is_absolute()
        assert not any("node" in key or "gcs" in key for key in config)  # the Ray worker's argv never reaches it
        assert 1 <= int(row["epochs"]) <= 3
    assert "test evaluated only for the selected trial" in (out / "final.md").read_text()
    assert "[tune] 2/2 trials finished" in capsys.readouterr().out

    # Rerun on the same --out: the finished sweep is restored, nothing is trained or evaluated again.
    run_dirs = sorted(p for p in (out / "runs").glob("*/*") if p.is_dir())
    assert tune.main(argv) == 0
    assert "[tune] resuming the sweep" in capsys.readouterr().out
    assert sorted(p for p in (out / "runs").glob("*/*") if p.is_dir()) == run_dirs
    assert final_rows(out) == rows
    assert json.loads((Path(best[0]["run_dir"]) / TEST_RESULT).read_text()) == test


def test_invalid_sweep_fails_before_starting_ray(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE.replace("learning_rate: {grid: [0.0005, 0.05]}", "neg_params.no_such_key: {choice: [1]}"))
    with pytest.raises(SystemExit) as exit_:
        tune.main(["--space", str(space), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid sweep space" in err and "no_such_key" in err and not (tmp_path / "out" / "ray").exists()
