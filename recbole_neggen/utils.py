"""RecBole factories with our registries first (the RecBole-GNN pattern): get_model, get_trainer,
create_dataset, data_preparation. Anything not ours falls back to RecBole's own."""
from __future__ import annotations

import importlib
import os
import pkgutil
from functools import lru_cache
from logging import getLogger
from typing import Any

from recbole.data import create_dataset as recbole_create_dataset
from recbole.data.dataloader import TrainDataLoader
from recbole.data.utils import create_samplers
from recbole.utils import ModelType
from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

from recbole_neggen.evaluation import FullSortLoader
from recbole_neggen.registry import normalize

_RECBOLE_MODEL_PACKAGES = ("general_recommender", "context_aware_recommender", "sequential_recommender",
                           "knowledge_aware_recommender")


@lru_cache(maxsize=1)
def recbole_model_names() -> dict[str, str]:
    """Normalised name -> class name of every model RecBole ships (one module per model)."""
    names: dict[str, str] = {}
    for package in _RECBOLE_MODEL_PACKAGES:
        module = importlib.import_module(f"recbole.model.{package}")
        for info in pkgutil.iter_modules(module.__path__):
            for attr, value in vars(module).items():
                if isinstance(value, type) and attr.lower() == info.name:
                    names[info.name] = attr
    return names


def get_model(name: str) -> type:
    """Model class by name: ours (``recbole_neggen.model.MODELS``) first, then RecBole's built-ins.

    Raises:
        ValueError: listing every valid name when ``name`` is unknown.
    """
    from recbole_neggen.model import MODELS

    if name in MODELS:
        return MODELS.get(name)
    builtin = recbole_model_names().get(normalize(name))
    if builtin is not None:
        return recbole_get_model(builtin)
    raise ValueError(
        f"unknown model {name!r}; ours: {', '.join(MODELS.names()) or '(none)'}; "
        f"RecBole's: {', '.join(sorted(recbole_model_names().values()))}"
    )


def get_trainer(model_type: ModelType, model_name: str) -> type:
    """Our :class:`~recbole_neggen.trainer.Trainer` for general recommenders, else RecBole's choice."""
    from recbole_neggen.trainer import Trainer

    if model_type == ModelType.GENERAL:
        return Trainer
    return recbole_get_trainer(model_type, model_name)


def is_ours(config: Any) -> bool:
    from recbole_neggen.model import MODELS

    return config["model"] in MODELS


BUNDLED_DATASETS = ("ml-100k",)


def configure_dataset(config: Any) -> None:
    """Point ``config['data_path']`` at the prepared copy of ``config['dataset']`` (preparing it on first use)
    and set the fixed train/valid/test split files. RecBole's bundled ``ml-100k`` is used as shipped."""
    if config["dataset"] in BUNDLED_DATASETS:
        return
    from recbole_neggen.data.locate import prepared_dir

    source_root = os.path.dirname(config["data_path"])
    directory = prepared_dir(config["dataset"], source_root, config["prepared_path"])
    config["data_path"] = str(directory)
    config["benchmark_filename"] = ["train", "valid", "test"]
    config["load_col"] = {"inter": [config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]]}


def create_dataset(config: Any) -> Any:
    """Locate (and on first use prepare) ``config['dataset']``, then build it.

    Our models get a :class:`~recbole_neggen.data.dataset.MultiModalDataset` (item features aligned to
    RecBole's ids); RecBole's built-in models get RecBole's dataset class.
    """
    configure_dataset(config)
    if is_ours(config):
        from recbole_neggen.data.dataset import MultiModalDataset

        return MultiModalDataset(config)
    return recbole_create_dataset(config)


def data_preparation(config: Any, dataset: Any) -> tuple[Any, Any, Any]:
    """Split ``dataset`` and build (train, valid, test) loaders.

    Train: our candidate loader when the model asks for candidates, else RecBole's ``TrainDataLoader``.
    Valid / test: full-sort loaders (RecBole's batches, vectorised collation). With ``eval_protocol: mmrec`` the test loader masks only the user's
    training items (MMRec), with ``recbole`` training + validation items (RecBole's default).
    """
    train_set, valid_set, test_set = dataset.build()
    train_sampler, valid_sampler, test_sampler = create_samplers(config, dataset, [train_set, valid_set, test_set])
    if getattr(config.model_class, "uses_candidates", False):
        from recbole_neggen.data.dataloader import CandidateTrainLoader

        train = CandidateTrainLoader(config, train_set, train_sampler, shuffle=config["shuffle"])
    else:
        train = TrainDataLoader(config, train_set, train_sampler, shuffle=config["shuffle"])
    test_mask_sampler = train_sampler if config.args.eval_protocol == "mmrec" else test_sampler
    valid = FullSortLoader(config, valid_set, valid_sampler, shuffle=False)
    test = FullSortLoader(config, test_set, test_mask_sampler, shuffle=False)
    getLogger().info(f"evaluation protocol: {config.args.eval_protocol} (test masks "
                     f"{'training items only' if config.args.eval_protocol == 'mmrec' else 'training + validation items'})")
    return train, valid, test
