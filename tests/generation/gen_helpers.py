"""Shared helpers for the generation tests (imported as ``gen_helpers``; tests/generation is on sys.path)."""
from __future__ import annotations

import json

from recbole_neggen.generation.records import ItemRecord

STRUCTURED = [
    ("s1", "Red Cotton Bib", "bib", "red", "cotton", "Acme"),
    ("s2", "Blue Cotton Bib", "bib", "blue", "cotton", "Acme"),
    ("s3", "Green Silicone Bib", "bib", "green", "silicone", "Bibco"),
    ("s4", "Yellow Plastic Bib", "bib", "yellow", "plastic", "Bibco"),
    ("s5", "Red Wooden Rattle", "rattle", "red", "wood", "Toyco"),
    ("s6", "Pink Plastic Rattle", "rattle", "pink", "plastic", "Toyco"),
    ("s7", "White Silicone Rattle", "rattle", "white", "silicone", "Acme"),
]
TEXT_ONLY = [
    ("t1", "Soft Bite Spoons, 5 Pack", "Learning Curve", "4 months & up. Soft spoons with stainless steel handles in bright red."),
    ("t2", "Organic Cotton Swaddle Blanket - Grey", "Aden", "Breathable muslin swaddle for newborns, 2-pack."),
    ("t3", "Stacking Cups - Blue", "", "Ten plastic cups for toddlers 12-24 months."),
    ("t4", "Hooded Towel - Pink", "Acme", "Soft terry towel, large, for infants."),
    ("t5", "Sippy Cups, 2 Pack", "Munchkin", "Spill-proof plastic cups, 6-12 months, in green."),
]


def structured_items() -> list[ItemRecord]:
    return [ItemRecord(i, title=t, brand=b, categories=("Baby",), description=f"A {c} {m} {cat} for babies.",
                       attributes={"category": cat, "colour": c, "material": m, "brand": b})
            for i, t, cat, c, m, b in STRUCTURED]


def text_items() -> list[ItemRecord]:
    return [ItemRecord(i, title=t, brand=b, categories=("Baby",), description=d) for i, t, b, d in TEXT_ONLY]


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
