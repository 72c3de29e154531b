"""The hot-path scripts of ``benchmarks/`` run end to end on the small generated dataset and print their table.
Their numbers are not checked (no timed assertions): this only keeps the scripts from rotting."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {  # script: (arguments after --dataset synthetic, a line its output must contain)
    "bench_hotpaths.py": (["--epochs", "1", "--strategies", "rns", "dns", "neggen", "--neggen-encoder", "hashing"],
                          "| LightGCN 2 layers, neggen (C=32) |"),
    "bench_eval.py": (["--repeats", "1"], "full-sort eval pass, synthetic test split"),
    "bench_floors.py": (["--rounds", "1", "--batches", "1", "--neggen-encoder", "hashing"], "| NegGen floor: "),
    "profile_hotpaths.py": (["--top", "3"], "## full-sort evaluation pass"),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_script_runs_on_synthetic_data(script: str, tmp_path: Path) -> None:
    args, expected = SCRIPTS[script]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NEGGEN_PREPARED_PATH": str(tmp_path / "prepared"),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--dataset", "synthetic", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert expected in done.stdout, done.stdout[-4000:]
