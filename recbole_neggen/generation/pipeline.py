"""Items -> negative bank: analyse (T1), then K balanced intervene calls (T2 under the T3 plan) per item,
validated, repaired once, encoded and committed per batch. Also the ``generate`` CLI subcommand.

Variant types follow a global round-robin over (item position, variant index): variant j of the item at
catalogue position p edits ``TAGS[(p * K + j) % 3]``, so the three types are balanced across the bank
and every item with K >= 3 gets each type. Variants of a type that repeats for an item are generated in
a later round, told the values the earlier ones used.
"""
from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import inspect
import json
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from recbole_neggen.encoders import TEXT_ENCODERS
from recbole_neggen.generation.backends import BACKENDS, Backend, Request
from recbole_neggen.generation.bank import BankWriter, NegativeBank, entry_rows
from recbole_neggen.generation.features import FeatureSpace, TextEncoderLike, encoder_name, fit_ridge
from recbole_neggen.generation.records import ItemRecord, load_items
from recbole_neggen.generation.report import write_report
from recbole_neggen.generation.schema import AnswerError, parse_answer, validate_analysis, validate_variant
from recbole_neggen.generation.templates import TAGS, TEMPLATE_VERSION, Templates

logger = logging.getLogger(__name__)

DEFAULT_MAX_TEXT_CHARS = 400  # source text length: bounds prompt and encoding cost
MAX_ECHO_CHARS = 4_000  # how much of a rejected answer goes back to the model in the repair turn
PROJECTION_FILE = "image_projection.npy"


def derive_seed(seed: int, *parts: Any) -> int:
    """A 31-bit seed for one (item, stage, variant): independent of batching and resume order."""
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def plan_tags(position: int, k: int) -> list[str]:
    """Variant types of the item at catalogue ``position`` (global round-robin)."""
    return [TAGS[(position * k + j) % len(TAGS)] for j in range(k)]


def dataset_digest(items: Sequence[ItemRecord]) -> str:
    """Hash of the catalogue content (used when the caller gives no dataset hash)."""
    h = hashlib.sha256()
    for r in items:
        h.update(json.dumps([r.item_id, r.title, r.brand, r.categories, r.description, r.attributes,
                             r.image.name if r.image else None], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def default_text_encoder() -> TextEncoderLike:
    """all-MiniLM-L6-v2 (offline), the dataset text encoder."""
    return make_text_encoder("minilm")


def make_text_encoder(name: str) -> TextEncoderLike:
    """A text encoder by name from ``recbole_neggen.encoders.TEXT_ENCODERS``: ``minilm`` (all-MiniLM-L6-v2,
    offline, bf16 where the CPU supports it), ``minilm-fp32`` or ``hashing`` (cheap, for smoke runs)."""
    return TEXT_ENCODERS.get(name)()


# ------------------------------------------------------------------------------------------ stages
def run_stage(
    backend: Backend,
    templates: Templates,
    requests: Sequence[Request],
    validators: Sequence[Callable[[dict[str, Any]], dict[str, Any]]],
) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """Ask, validate, send each failure back once, validate again. Returns per request the accepted
    value (or None) and a log event ``{"outcome": parsed|repaired|rejected, "error"?}``."""
    results: list[tuple[dict[str, Any] | None, dict[str, Any]] | None] = [None] * len(requests)
    repairs: list[tuple[int, Request]] = []
    for i, reply in enumerate(backend.complete(requests)):
        if reply.error is not None:
            results[i] = (None, {"outcome": "rejected", "error": reply.error})
            continue
        try:
            results[i] = (parse_answer(reply.data if reply.data is not None else reply.text or "", validators[i]),
                          {"outcome": "parsed"})
        except AnswerError as exc:
            if backend.can_repair and reply.text is not None:
                turns = ({"role": "assistant", "content": reply.text[:MAX_ECHO_CHARS]},
                         {"role": "user", "content": templates.repair_prompt(str(exc))})
                repairs.append((i, dataclasses.replace(requests[i], messages=requests[i].messages + turns)))
            else:
                results[i] = (None, {"outcome": "rejected", "error": str(exc)})
    for (i, _), reply in zip(repairs, backend.complete([r for _, r in repairs])):
        try:
            if reply.error is not None:
                raise AnswerError(reply.error)
            results[i] = (parse_answer(reply.text or "", validators[i]), {"outcome": "repaired"})
        except AnswerError as exc:
            results[i] = (None, {"outcome": "rejected", "error": str(exc)})
    return [r for r in results if r is not None]


def generate_batch(
    batch: Sequence[tuple[int, ItemRecord]],
    backend: Backend,
    templates: Templates,
    *,
    k: int,
    seed: int,
    max_text_chars: int,
) -> list[dict[str, Any]]:
    """Bank lines (without rows) for ``(catalogue position, item)`` pairs."""
    entries = {item.item_id: {"item": item.item_id, "status": "failed", "positive": None, "analysis": None,
                              "variants": [], "log": []} for _, item in batch}
    sources = {item.item_id: item.source_text(max_text_chars) for _, item in batch}
    images = {item.item_id: item.image if backend.sees_images else None for _, item in batch}
    runnable = []
    for position, item in batch:
        if item.has_text or images[item.item_id] is not None:
            runnable.append((position, item))
        else:
            entries[item.item_id]["log"].append({"stage": "input", "outcome": "rejected",
                                                 "error": "item has no text (and no image the model can see)"})
    requests = [Request("analyse", item, ({"role": "user", "content": templates.analyse_prompt(
        sources[item.item_id], images[item.item_id] is not None)},), derive_seed(seed, item.item_id, "analyse"),
        sources[item.item_id], image=images[item.item_id]) for _, item in runnable]
    analysed = []
    for (position, item), (value, event) in zip(runnable, run_stage(backend, templates, requests,
                                                                    [validate_analysis] * len(requests))):
        entry = entries[item.item_id]
        entry["log"].append({"stage": "analyse", **event})
        if value is not None:
            entry["analysis"] = value
            entry["positive"] = {"text": sources[item.item_id], "visual_description": value["visual_description"]}
            analysed.append((position, item))
    plans = {item.item_id: plan_tags(position, k) for position, item in analysed}
    ordinals = {t: [tags[:j].count(tags[j]) for j in range(k)] for t, tags in plans.items()}
    for round_no in range(max((max(o) for o in ordinals.values()), default=-1) + 1):
        jobs, requests, validators = [], [], []
        for _, item in analysed:
            token, entry = item.item_id, entries[item.item_id]
            for j in (j for j in range(k) if ordinals[token][j] == round_no):
                tag = plans[token][j]
                avoid = tuple(c["to"] for v in entry["variants"] if v["modality"] == tag for c in v["changes"])
                prompt = templates.intervene_prompt(sources[token], entry["analysis"], tag, avoid)
                requests.append(Request("intervene", item, ({"role": "user", "content": prompt},),
                                        derive_seed(seed, token, "intervene", j), sources[token],
                                        analysis=entry["analysis"], tag=tag, variant=j, avoid=avoid))
                validators.append(partial(validate_variant, tag=tag, analysis=entry["analysis"],
                                          source_text=sources[token], earlier=tuple(entry["variants"])))
                jobs.append((token, j, tag))
        for (token, j, tag), (value, event) in zip(jobs, run_stage(backend, templates, requests, validators)):
            entries[token]["log"].append({"stage": "intervene", "tag": tag, "variant": j, **event})
            if value is not None:
                entries[token]["variants"].append({"index": j, **value})
    for entry in entries.values():
        entry["variants"].sort(key=lambda v: v["index"])
        n = len(entry["variants"])
        entry["status"] = "ok" if n == k else "partial" if n else "failed"
        if not n:
            entry["positive"] = None
    return list(entries.values())


# ------------------------------------------------------------------------------------------ spaces
def space_plan(encoder: TextEncoderLike, visual_encoder: TextEncoderLike | None,
               image_features: np.ndarray | None) -> dict[str, dict[str, Any]]:
    """Provenance description of the feature spaces (no encoding happens here)."""
    plan = {"text": {"field": "text", "encoder": encoder_name(encoder), "map": "encoder"},
            "visual": {"field": "visual_description", "encoder": encoder_name(visual_encoder or encoder),
                       "map": "encoder"}}
    if image_features is not None:
        plan["image"] = {"field": "visual_description", "encoder": encoder_name(encoder),
                         "map": "ridge(text encoder -> precomputed image features)",
                         "target": hashlib.sha256(np.ascontiguousarray(image_features, np.float32)).hexdigest()[:16]}
    return plan


def build_spaces(items: Sequence[ItemRecord], out_dir: Path, encoder: TextEncoderLike,
                 visual_encoder: TextEncoderLike | None, image_features: np.ndarray | None,
                 max_text_chars: int) -> list[FeatureSpace]:
    """Feature spaces; the ridge map (when image features are given) is fitted once and kept in the bank."""
    spaces = [FeatureSpace("text", "text", encoder), FeatureSpace("visual", "visual_description", visual_encoder or encoder)]
    if image_features is not None:
        path = out_dir / PROJECTION_FILE
        if path.is_file():
            weights = np.load(path, allow_pickle=False)
        else:
            has_text = [i for i, r in enumerate(items) if r.has_text]
            logger.info("fitting the text -> image-feature ridge map on %d catalogue items", len(has_text))
            x = FeatureSpace("fit", "text", encoder).encode([items[i].source_text(max_text_chars) for i in has_text])
            weights = fit_ridge(x, np.asarray(image_features, np.float32)[has_text])
            np.save(path, weights)
        spaces.append(FeatureSpace("image", "visual_description", encoder, weights))
    return spaces


def generate_bank(
    items: Sequence[ItemRecord],
    backend: Backend,
    out_dir: str | Path,
    *,
    k: int = 4,
    seed: int = 0,
    batch_size: int = 16,
    encoder: TextEncoderLike | None = None,
    visual_encoder: TextEncoderLike | None = None,
    image_features: np.ndarray | None = None,
    dataset_hash: str | None = None,
    limit: int | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    template_version: str = TEMPLATE_VERSION,
    progress: bool = True,
) -> NegativeBank:
    """Generate (or resume) the bank of ``items[:limit]`` in ``out_dir``; the whole ``items`` list is the
    catalogue (vocabularies, ridge fit, dataset hash). ``image_features``: float32 [len(items), dim]
    precomputed image features in ``items`` order. Re-running with the same settings is a no-op."""
    items = list(items)
    if k < 1 or batch_size < 1:
        raise ValueError(f"k and batch_size must be >= 1, got k={k}, batch_size={batch_size}")
    if image_features is not None and np.shape(image_features)[0] != len(items):
        raise ValueError(f"image_features has {np.shape(image_features)[0]} rows for {len(items)} items")
    templates = Templates.load(template_version)
    encoder = encoder if encoder is not None else default_text_encoder()
    out_dir = Path(out_dir)
    settings = {
        "backend": backend.settings(),
        "templates": {"version": templates.version, "digest": templates.digest},
        "seed": seed, "k": k, "max_text_chars": max_text_chars,
        "dataset_hash": dataset_hash or dataset_digest(items),
        "spaces": space_plan(encoder, visual_encoder, image_features),
    }
    writer = BankWriter.open(out_dir, settings)
    todo = items if limit is None else items[:limit]
    pending = [(p, item) for p, item in enumerate(todo) if item.item_id not in writer.done]
    if not pending:
        logger.info("%s: all %d items already in the bank; nothing to do", out_dir, len(todo))
        return NegativeBank.open(out_dir)
    logger.info("generating %d items with the %s backend into %s (%d already done); visual space: %s",
                len(pending), backend.name, out_dir, len(todo) - len(pending), settings["spaces"]["visual"])
    backend.prepare(items)
    spaces = build_spaces(items, out_dir, encoder, visual_encoder, image_features, max_text_chars)
    with tqdm(total=len(pending), desc=f"generate [{backend.name}]", unit="item", disable=not progress) as bar:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            entries = generate_batch(batch, backend, templates, k=k, seed=seed, max_text_chars=max_text_chars)
            rows = [r for e in entries for r in entry_rows(e)]
            features = {s.name: s.encode([r[s.field] for r in rows]) for s in spaces} if rows else {}
            writer.append(entries, features)
            bar.update(len(batch))
            bar.set_postfix(ok=writer.provenance["stats"]["items"]["ok"], failed=writer.provenance["stats"]["items"]["failed"])
    return NegativeBank.open(out_dir)


def default_bank_dir(dataset_dir: str | Path, backend: str, encoder: str, k: int, seed: int) -> Path:
    """Where a dataset's bank lives unless told otherwise: ``<dataset_dir>/neggen/<backend>-<encoder>-k<K>-seed<S>``."""
    return Path(dataset_dir) / "neggen" / f"{backend}-{encoder}-k{k}-seed{seed}"


def bank_from_items_file(items_path: str | Path, backend: Backend, out_dir: str | Path, *, encoder: str = "minilm",
                         image_features: np.ndarray | None = None, **options: Any) -> NegativeBank:
    """:func:`generate_bank` for an ``items.jsonl`` file (its SHA-256 is the dataset hash); the one path used by
    the ``generate`` command and by the NegGen model's first run, so both find and reuse the same bank."""
    items_path = Path(items_path)
    items = load_items(items_path)
    dataset_hash = hashlib.sha256(items_path.read_bytes()).hexdigest()[:16]
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(out_dir.with_name(out_dir.name + ".lock"), "w") as lock:  # parallel runs wait, then reuse
        fcntl.flock(lock, fcntl.LOCK_EX)
        return generate_bank(items, backend, out_dir, encoder=make_text_encoder(encoder),
                             image_features=image_features, dataset_hash=dataset_hash, **options)


# ---------------------------------------------------------------------------------------------- CLI
def build_backend(name: str, **options: Any) -> Backend:
    """Registered backend ``name`` built from the ``options`` its constructor takes (None = default)."""
    cls = BACKENDS.get(name)
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in options.items() if k in params and v is not None}
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty
               and p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in kwargs]
    if missing:
        raise ValueError(f"the {name} backend needs {', '.join('--' + m.replace('_', '-') for m in missing)}")
    return cls(**kwargs)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_recbole_neggen.py generate",
                                description="Generate NegGen's negative bank (resumable; same settings = no-op).")
    src = p.add_argument_group("items")
    src.add_argument("--dataset", help="dataset name: reads <dataset-dir>/<name>.items.jsonl; without --dataset-dir "
                                       "the dataset is located (and prepared on first use) as training does")
    src.add_argument("--dataset-dir", type=Path, help="prepared dataset directory")
    src.add_argument("--data-path", help="root holding MMRec-format <dataset>/ folders (default $NEGGEN_DATA_PATH)")
    src.add_argument("--prepared-path", default=None,
                     help="where prepared datasets live (default $NEGGEN_PREPARED_PATH or ./dataset)")
    src.add_argument("--items", type=Path, help="items.jsonl path (overrides --dataset/--dataset-dir)")
    src.add_argument("--limit", type=int, help="generate only the first N items")
    src.add_argument("--image-features", type=Path,
                     help=".npy [n_items, dim] precomputed image features in items-file order: adds the 'image' "
                          "space through a ridge map fitted on the catalogue")
    gen = p.add_argument_group("generation")
    gen.add_argument("--backend", help=f"one of {', '.join(BACKENDS.names())}; default: transformers when --model "
                                       "is given (openai with --base-url), else attribute (no LLM)")
    gen.add_argument("--model", help="local path, model id or .gguf file (transformers); model name (openai)")
    gen.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    gen.add_argument("--api-key-env", help="environment variable holding the API key (default OPENAI_API_KEY)")
    gen.add_argument("--k", type=int, default=4, help="variants per item (default 4)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--batch-size", type=int, default=16, help="items per committed batch")
    gen.add_argument("--max-new-tokens", type=int, help="answer length limit (LLM backends)")
    gen.add_argument("--temperature", type=float, help="0 = greedy (default)")
    gen.add_argument("--concurrency", type=int, help="parallel HTTP requests (openai)")
    gen.add_argument("--timeout", type=float, help="seconds per HTTP request (openai)")
    gen.add_argument("--max-text-chars", type=int, default=DEFAULT_MAX_TEXT_CHARS)
    gen.add_argument("--template-version", default=TEMPLATE_VERSION)
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, help="bank directory (default <dataset dir>/neggen/<backend>-<encoder>-k<K>-"
                                              "seed<S>, the one NegGen training uses)")
    out.add_argument("--encoder", choices=TEXT_ENCODERS.names(), default="minilm",
                     help="text encoder: all-MiniLM-L6-v2 (default) or cheap feature hashing (smoke tests)")
    out.add_argument("--report-items", type=int, default=20, help="items shown in report.md (0: no report)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``generate`` subcommand; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.items is None:
        if args.dataset is None:
            parser.error("give --items PATH, or --dataset NAME (with --dataset-dir DIR for a prepared copy)")
        if args.dataset_dir is None:
            from recbole_neggen.data.locate import prepared_dir

            prepared = args.prepared_path or os.environ.get("NEGGEN_PREPARED_PATH") or "dataset"
            args.dataset_dir = prepared_dir(args.dataset, args.data_path, prepared)
        args.items = args.dataset_dir / f"{args.dataset}.items.jsonl"
    backend_name = args.backend or ("openai" if args.base_url else "transformers" if args.model else "attribute")
    if args.backend is None and backend_name == "attribute":
        logger.info("no model configured: using the attribute backend (no LLM; attributes mined from the catalogue)")
    out = args.out or default_bank_dir(args.items.parent, backend_name, args.encoder, args.k, args.seed)
    try:
        backend = build_backend(backend_name, model=args.model, base_url=args.base_url, api_key_env=args.api_key_env,
                                max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                concurrency=args.concurrency, timeout=args.timeout)
        image_features = None
        if args.image_features is not None:
            image_features = np.load(args.image_features, allow_pickle=False)
            n_items = len(load_items(args.items))
            if image_features.ndim != 2 or image_features.shape[0] != n_items:
                raise ValueError(f"{args.image_features}: shape {image_features.shape}, expected "
                                 f"[{n_items} items of {args.items}, dim]")
        bank = bank_from_items_file(args.items, backend, out, encoder=args.encoder, image_features=image_features,
                                    k=args.k, seed=args.seed, batch_size=args.batch_size, limit=args.limit,
                                    max_text_chars=args.max_text_chars, template_version=args.template_version)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.report_items > 0:
        logger.info("report: %s", write_report(bank, n_items=args.report_items))
    print(json.dumps({"bank": str(out), "items": len(bank), "stats": bank.stats}, indent=2))
    return 0
