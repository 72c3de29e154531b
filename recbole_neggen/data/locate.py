"""Find a prepared dataset, preparing it on first use (MMRec source or synthetic)."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from recbole_neggen.data.files import is_prepared

logger = logging.getLogger(__name__)

ENV_DATA_PATH = "NEGGEN_DATA_PATH"
_SYNTHETIC = re.compile(r"^synthetic(?:-(\d+))?$")


class DatasetNotFoundError(FileNotFoundError):
    """No prepared copy, no source files, and not a generated dataset."""


def prepared_dir(name: str, data_path: str | Path | None, prepared_root: str | Path) -> Path:
    """``<prepared_root>/<name>`` holding the prepared dataset, creating it when possible.

    Order: prepared files already there -> ``synthetic`` / ``synthetic-<n_items>`` generated ->
    an MMRec-format source ``<root>/<name>/<name>.inter`` for root in (``data_path``,
    ``$NEGGEN_DATA_PATH``) prepared (text features from ``items.jsonl``) -> ``DatasetNotFoundError``.
    """
    target = Path(prepared_root) / name
    if is_prepared(target, name):
        return target
    match = _SYNTHETIC.match(name)
    if match:
        from recbole_neggen.data.synthetic import make_synthetic

        n_items = int(match.group(1)) if match.group(1) else 200
        n_users = 300 if match.group(1) is None else max(300, n_items // 2)
        return make_synthetic(prepared_root, name=name, n_items=n_items, n_users=n_users).directory
    roots = [Path(p) for p in (data_path, os.environ.get(ENV_DATA_PATH)) if p]
    looked = [str(target)]
    for root in roots:
        source = root / name
        looked.append(str(source / f"{name}.inter"))
        if (source / f"{name}.inter").is_file():
            from recbole_neggen.data.prepare import prepare_mmrec

            logger.info("preparing %s from %s into %s", name, source, target)
            return prepare_mmrec(name, source, prepared_root).directory
    raise DatasetNotFoundError(
        f"dataset {name!r} not found. Looked for prepared files in {looked[0]} and for MMRec-format "
        f"sources at: {', '.join(looked[1:]) or '(no data_path and no $' + ENV_DATA_PATH + ' set)'}.\n"
        f"Get MMRec's files (<name>.inter, i_id_mapping.csv, u_id_mapping.csv, optional text_feat.npy / "
        f"image_feat.npy) from the Google Drive link in the data folder README of "
        f"https://github.com/enoche/MMRec (data/), put them in <root>/{name}/ and set the config key "
        f"'data_path' or the environment variable {ENV_DATA_PATH} to <root>; or run "
        f"`python -m recbole_neggen.data.prepare {name} --source DIR`."
    )
