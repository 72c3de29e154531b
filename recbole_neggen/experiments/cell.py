"""One bench run in its own process, so a crash cannot take the bench down and peak memory is per run:

    python -m recbole_neggen.experiments.cell JOB.json

``JOB.json`` holds ``model``, ``dataset``, ``config_file_list``, ``config_dict`` and ``output`` (a path).
The run's outcome is written to ``output``: ``{"status": "ok", "result": <objective() result>}`` or
``{"status": "failed", "error": "<Type>: <message>", "traceback": str, "peak_rss_mb": float}``.
Exit status 0 when the run succeeded, 1 otherwise.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

JOB_KEYS = ("model", "dataset", "config_file_list", "config_dict", "output")


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run ``objective`` (test evaluated once at the best-validation checkpoint) and return the outcome."""
    import recbole_neggen  # noqa: F401  (compat shims before recbole)
    from recbole_neggen.quick_start import objective, peak_rss_mb

    try:
        result = objective(job["model"], job["dataset"], job["config_file_list"] or None, job["config_dict"],
                           saved=True, evaluate_test=True)
        return {"status": "ok", "result": result}
    except Exception as exc:  # noqa: BLE001  (any failure of the run is reported, never raised)
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "peak_rss_mb": round(peak_rss_mb(), 1)}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m recbole_neggen.experiments.cell JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    missing = [k for k in JOB_KEYS if k not in job]
    if missing:
        raise ValueError(f"{argv[0]}: job is missing {missing}")
    outcome = run_job(job)
    if outcome["status"] == "failed":
        print(outcome["traceback"], file=sys.stderr)
    Path(job["output"]).write_text(json.dumps(outcome, indent=2))
    return 0 if outcome["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
