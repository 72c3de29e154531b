"""bench: grid expansion, per-run CSV rows, mean ± std table, figures, resume, crashed cells reported."""
import csv
import json

from recbole_neggen.experiments import bench
from recbole_neggen.experiments.bench import BenchSpec, plan

GRID = """\
dataset: synthetic
models: [NSRec]
strategies: [rns, {name: dns, neg_params: {n_candidates: 4}}]
seeds: [1, 2]
config: {backbone: mf, epochs: 2, learning_rate: 0.01, train_batch_size: 512, neg_diagnostics: true,
         neg_diagnostics_rows: 256}
"""
BROKEN_MODEL = "models: [NSRec, {name: NSRec, config: {backbone: nosuch}}]\n"


def rows(out):
    with open(out / "runs.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_plan_crosses_strategies_only_for_models_that_take_negatives(tmp_path):
    path = tmp_path / "grid.yaml"
    own = "{name: NSRec, config: {neg_strategy: dns_mn, neg_params: {n_candidates: 8, top_n: 2}}, strategies: []}"
    path.write_text(GRID.replace("models: [NSRec]", f"models: [NSRec, BPR, {own}]").replace(
        "strategies: [rns,", "strategies: [{name: dns, label: bad, neg_params: {n_candidates: 0}}, rns,"))
    runs = plan(BenchSpec.load(path), {"epochs": 1})
    cells = [(r.model, r.backbone, r.strategy, r.seed) for r in runs]
    assert cells == [("NSRec", "mf", s, seed) for s in ("bad", "rns", "dns") for seed in (1, 2)] + [
        ("BPR", "-", "-", 1), ("BPR", "-", "-", 2), ("NSRec", "mf", "dns_mn", 1), ("NSRec", "mf", "dns_mn", 2)]
    bad, rns, dns, bpr, configured = runs[0:2], runs[2:4], runs[4:6], runs[6:8], runs[8:10]
    assert configured[0].neg_params == {"n_candidates": 8, "top_n": 2} and configured[0].probe is not None
    assert all(r.probe is None and "n_candidates" in r.error for r in bad)
    for cell in (rns, dns, bpr):  # one hash per cell (the seed is not part of it), distinct across cells
        assert cell[0].config_hash == cell[1].config_hash and cell[0].error is None
    assert len({rns[0].config_hash, dns[0].config_hash, bpr[0].config_hash}) == 3
    assert dns[0].config_dict["neg_params"] == {"n_candidates": 4} and dns[1].config_dict["seed"] == 2
    assert rns[0].config_dict["epochs"] == 1 and "neg_strategy" not in bpr[0].config_dict
    assert rns[0].config_dict["data_path"].startswith("/") and rns[0].config_dict["prepared_path"].startswith("/")


def test_bench_end_to_end_resume_and_crash(tmp_path, capsys):
    grid, out = tmp_path / "grid.yaml", tmp_path / "out"
    grid.write_text(GRID)
    assert bench.main(["--grid", str(grid), "--out", str(out), "--jobs", "2"]) == 0

    first = rows(out)
    assert len(first) == 4 and {r["status"] for r in first} == {"ok"}
    assert sorted((r["strategy"], r["seed"]) for r in first) == [("dns", "1"), ("dns", "2"), ("rns", "1"), ("rns", "2")]
    for row in first:
        result = json.loads(open(f"{row['run_dir']}/result.json").read())
        assert row["config_hash"] == result["config_hash"] and int(row["seed"]) == result["seed"]
        assert float(row["test_recall@20"]) == result["test"]["recall@20"]
        assert float(row["best_valid_score"]) == result["best_valid_score"] and row["epochs_run"] == "2"
        assert float(row["peak_rss_mb"]) > 0 and row["backbone"] == "mf"
    table = (out / "table.md").read_text()
    assert "| NSRec | mf | rns | 2/2 | 0 |" in table and "| NSRec | mf | dns | 2/2 | 0 |" in table and " ± " in table
    for figure in ("metrics.png", "valid_curves.png", "diagnostics/diagnostics_percentile.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # RNS only, plus a model that crashes, seed 1 only: the finished run is skipped, the crash is reported.
    grid.write_text(GRID.replace("models: [NSRec]\n", BROKEN_MODEL).replace(
        "strategies: [rns, {name: dns, neg_params: {n_candidates: 4}}]", "strategies: [rns]"))
    capsys.readouterr()
    assert bench.main(["--grid", str(grid), "--out", str(out), "--seeds", "1"]) == 1
    second = rows(out)
    assert second[:4] == first  # nothing re-run, nothing rewritten
    failed = second[4:]
    assert len(failed) == 1 and failed[0]["status"] == "failed" and failed[0]["seed"] == "1"
    assert "nosuch" in failed[0]["error"] and failed[0]["backbone"] == "nosuch"
    assert "unknown backbone 'nosuch'" in open(failed[0]["log"]).read()  # the child's traceback is kept
    assert len(list((out / "runs").glob("*/result.json"))) == 4
    table = (out / "table.md").read_text()
    assert "| NSRec | mf | rns | 1/1 | 0 |" in table and "| NSRec | nosuch | rns | 0/1 | 1 |" in table
    assert "| dns |" not in table  # the table covers this grid only
    captured = capsys.readouterr()
    assert "1 skipped (already done), 1 failed" in captured.out and "FAILED NSRec/nosuch/rns seed 1" in captured.err
