"""Configuration: RecBole's Config with our yaml layered over it, and our own keys parsed once and validated."""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from recbole.config import Config as RecBoleConfig

from recbole_neggen.utils import get_model

EVAL_PROTOCOLS = ("recbole", "mmrec")
NEG_POOLS = ("all", "train_items")
DATA_PATH_ENV = "NEGGEN_DATA_PATH"
PREPARED_PATH_ENV = "NEGGEN_PREPARED_PATH"


def properties_dir() -> Path:
    """Directory of the packaged yaml files (``recbole_neggen/properties`` links the top-level ``properties/``)."""
    return Path(__file__).resolve().parent / "properties"


def parse_cli_overrides(args: Sequence[str]) -> dict[str, Any]:
    """``['--key=value', ...]`` -> ``{key: value}`` with values read as Python literals when they parse.

    Raises:
        ValueError: on an argument that is not ``--key=value`` or a key given twice with different values.
    """
    overrides: dict[str, Any] = {}
    for arg in args:
        if not arg.startswith("--") or "=" not in arg:
            raise ValueError(f"config overrides must look like --key=value, got {arg!r}")
        key, raw = arg[2:].split("=", 1)
        try:
            value: Any = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = {"true": True, "false": False, "none": None}.get(raw.lower(), raw)
        if key in overrides and overrides[key] != value:
            raise ValueError(f"--{key} given twice with different values")
        overrides[key] = value
    return overrides


class Config(RecBoleConfig):
    """RecBole's Config plus ``properties/overall.yaml``, ``properties/model/<Class>.yaml`` for the model class
    and each of its base classes (NegGen reads NSRec.yaml, then NegGen.yaml) and
    ``properties/dataset/<dataset>.yaml`` of this package, loaded after RecBole's own (so ours win, and
    external files / dicts still win over both).

    Unlike RecBole's, it never reads ``sys.argv``: command-line overrides arrive through ``config_dict``
    (our CLI parses them with :func:`parse_cli_overrides`), so Ray workers and pytest flags cannot leak in.
    """

    def __init__(
        self,
        model: str | type | None = None,
        dataset: str | None = None,
        config_file_list: list[str] | None = None,
        config_dict: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(model, dataset, config_file_list, config_dict)
        self.args = ExperimentArgs.from_config(self)

    def _load_cmd_line(self) -> dict[str, Any]:
        return {}

    def _get_model_and_dataset(self, model: Any, dataset: Any) -> tuple[str, type, str]:
        if model is None:
            model = self.external_config_dict.get("model")
            if model is None:
                raise KeyError("no model given: pass --model NAME (or set `model` in a config file)")
        model_class = get_model(model) if isinstance(model, str) else model
        if dataset is None:
            dataset = self.external_config_dict.get("dataset")
            if dataset is None:
                raise KeyError("no dataset given: pass --dataset NAME (or set `dataset` in a config file)")
        return model_class.__name__, model_class, dataset

    def _load_internal_config_dict(self, model: str, model_class: type, dataset: str) -> None:
        super()._load_internal_config_dict(model, model_class, dataset)
        props = properties_dir()
        model_files = [props / "model" / f"{cls.__name__}.yaml" for cls in reversed(model_class.__mro__)]
        for path in (props / "overall.yaml", *model_files, props / "dataset" / f"{dataset}.yaml"):
            if path.is_file():
                self._update_internal_config_dict(str(path))

    def _set_default_parameters(self) -> None:
        if "data_path" not in self.external_config_dict and os.environ.get(DATA_PATH_ENV):
            self.final_config_dict["data_path"] = os.environ[DATA_PATH_ENV]
        self.final_config_dict["data_path"] = os.path.abspath(self.final_config_dict["data_path"])
        prepared = self.final_config_dict.get("prepared_path") or os.environ.get(PREPARED_PATH_ENV) or "dataset"
        self.final_config_dict["prepared_path"] = os.path.abspath(prepared)
        self.final_config_dict["run_root"] = os.path.abspath(self.final_config_dict.get("run_root") or "runs")
        super()._set_default_parameters()


@dataclass(frozen=True)
class CandidateSpec:
    """What the training loader draws per positive: ``n_candidates`` items from ``distribution``."""

    n_candidates: int
    distribution: str
    pop_alpha: float


@dataclass(frozen=True)
class ExperimentArgs:
    """Our own top-level keys, validated once (RecBole reads unknown keys as ``None`` silently).

    neg_strategy / neg_params: a name in ``recbole_neggen.sampling.STRATEGIES`` and its hyperparameters
    (validated against the strategy's typed arguments: unknown keys and out-of-range values are errors).
    neg_pool: ``all`` items, or ``train_items`` (only items seen in training, as MMRec draws negatives).
    """

    eval_protocol: str
    run_root: Path
    prepared_path: Path
    neg_strategy: str
    neg_params: dict[str, Any]
    neg_pool: str

    def build_strategy(self, embedding_size: int) -> Any:
        """A fresh strategy module (``recbole_neggen.sampling.Strategy``) for a model to own."""
        from recbole_neggen.sampling import build_strategy

        return build_strategy(self.neg_strategy, self.neg_params, embedding_size)

    def candidate_spec(self, embedding_size: int) -> CandidateSpec:
        strategy = self.build_strategy(embedding_size)
        return CandidateSpec(strategy.n_candidates, strategy.distribution, strategy.pop_alpha)

    @classmethod
    def from_config(cls, config: RecBoleConfig) -> "ExperimentArgs":
        protocol = config["eval_protocol"] or "mmrec"
        if protocol not in EVAL_PROTOCOLS:
            raise ValueError(f"eval_protocol must be one of {EVAL_PROTOCOLS}, got {protocol!r}")
        modes = config["eval_args"]["mode"]
        if set(modes.values() if isinstance(modes, dict) else [modes]) != {"full"}:
            raise ValueError(f"recbole_neggen evaluates with full ranking; eval_args.mode must be 'full', got {modes!r}")
        neg_params = config["neg_params"] or {}
        if not isinstance(neg_params, dict):
            raise ValueError(f"neg_params must be a mapping of strategy hyperparameters, got {neg_params!r}")
        neg_pool = config["neg_pool"] or "all"
        if neg_pool not in NEG_POOLS:
            raise ValueError(f"neg_pool must be one of {NEG_POOLS}, got {neg_pool!r}")
        args = cls(protocol, Path(config["run_root"]), Path(config["prepared_path"]),
                   str(config["neg_strategy"] or "rns"), dict(neg_params), neg_pool)
        args.build_strategy(int(config["embedding_size"] or 64))  # fail at config time, listing the choices
        return args
