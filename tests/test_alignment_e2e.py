"""Feature rows are aligned by raw item id, never by file order: shuffling every feature file's rows gives
bit-identical training results (VBPR reads the features in its item tower)."""
import shutil

import numpy as np

from recbole_neggen.quick_start import objective


def test_shuffled_feature_files_train_identically(tmp_path):
    settings = {"epochs": 2, "backbone": "vbpr", "neg_strategy": "dns", "neg_params": {"n_candidates": 4},
                "learning_rate": 0.01, "train_batch_size": 512}
    first = objective("NSRec", "synthetic", config_dict={
        **settings, "prepared_path": str(tmp_path / "a"), "run_root": str(tmp_path / "runs")})
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    files = sorted((tmp_path / "b" / "synthetic").glob("synthetic.*.npz"))
    assert {f.name for f in files} >= {"synthetic.text.npz", "synthetic.image.npz"}
    for path in files:
        with np.load(path, allow_pickle=False) as data:
            ids, feat = data["ids"], data["feat"]
        order = np.random.default_rng(0).permutation(len(ids))
        assert (order != np.arange(len(ids))).any()
        np.savez(path, ids=ids[order], feat=feat[order])
    second = objective("NSRec", "synthetic", config_dict={
        **settings, "prepared_path": str(tmp_path / "b"), "run_root": str(tmp_path / "runs")})
    assert first["best_valid"] == second["best_valid"] and first["test"] == second["test"]
    assert first["valid_history"] == second["valid_history"]
