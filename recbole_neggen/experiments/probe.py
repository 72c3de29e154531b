"""A run's Config built in the driver process, before anything is launched: it validates the settings,
prepares the dataset once (parallel runs never prepare it concurrently) and gives the config hash that
identifies the run, plus the absolute paths every run must use whatever its working directory."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from recbole_neggen.config import Config
from recbole_neggen.quick_start import config_hash
from recbole_neggen.utils import configure_dataset


@dataclass(frozen=True)
class Probe:
    """config: the resolved Config (dataset located); config_hash: as ``result.json`` will record it;
    paths: absolute ``data_path`` / ``prepared_path`` to pin in the run's ``config_dict``."""

    config: Config
    config_hash: str
    paths: dict[str, str]

    def check_metrics(self, metrics: Sequence[str]) -> None:
        """Raise ``ValueError`` when a metric name (``recall@20``) is not computed with this config."""
        computed = {f"{m.lower()}@{k}" for m in self.config["metrics"] for k in self.config["topk"]}
        missing = sorted(set(metrics) - computed)
        if missing:
            raise ValueError(f"report_metrics {missing} are not computed with metrics={self.config['metrics']}, "
                             f"topk={self.config['topk']}")


def probe(model: str, dataset: str, config_file_list: list[str], config_dict: dict[str, Any]) -> Probe:
    """Build the Config a run will see and prepare its dataset.

    RecBole's Config writes ``CUDA_VISIBLE_DEVICES`` from ``gpu_id`` as a side effect; the driver's value is
    restored so Ray and child processes still see every GPU.

    Raises:
        Whatever Config or dataset preparation raises for invalid settings (the caller reports it per run).
    """
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        config = Config(model, dataset, config_file_list or None, dict(config_dict))
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved
    paths = {"data_path": os.path.dirname(config["data_path"]), "prepared_path": config["prepared_path"]}
    configure_dataset(config)
    return Probe(config, config_hash(config), paths)
