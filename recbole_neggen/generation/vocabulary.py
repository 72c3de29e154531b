"""Item attributes without an LLM: structured attributes when a record has them, else attributes mined
from the catalogue text (product head noun, colour, material, pattern, size, target age, quantity), and
per-category value vocabularies from which contrasting values are drawn.

Values are kept as they are written in the item's text, so that a rewrite can substitute them in place.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from recbole_neggen.generation.records import ItemRecord

COLOURS = ("black", "white", "red", "blue", "navy", "green", "yellow", "pink", "purple", "orange", "grey",
           "gray", "brown", "beige", "teal", "aqua", "ivory", "cream", "turquoise", "lavender", "mint",
           "coral", "silver", "gold", "tan", "khaki", "charcoal", "maroon", "lime", "peach", "natural")
MATERIALS = ("organic cotton", "cotton", "polyester", "fleece", "wool", "bamboo", "silicone", "plastic",
             "stainless steel", "glass", "wood", "wooden", "rubber", "latex", "nylon", "microfiber", "muslin",
             "flannel", "terry", "velour", "satin", "linen", "leather", "felt", "foam", "mesh", "canvas",
             "jersey", "minky", "vinyl", "aluminum", "metal", "porcelain", "ceramic")
PATTERNS = ("polka dot", "striped", "stripes", "floral", "plaid", "checkered", "gingham", "chevron", "camo",
            "paisley", "animal print", "leopard", "zebra", "dots", "hearts", "stars", "argyle", "tie-dye")
SIZES = ("extra large", "x-large", "xl", "small", "medium", "large", "mini", "jumbo", "compact", "full size",
         "travel size", "twin", "queen", "king", "petite", "oversized")
_AGE = re.compile(r"(?<!\w)(?:\d+\s*(?:-|to)\s*\d+\s*(?:months?|mos?|years?|yrs?)|\d+\s*(?:months?|years?|yrs?)"
                  r"\s*(?:&|and|\+)\s*(?:up|older)|\d+\s*(?:months?|years?)\s*\+|newborns?|infants?|toddlers?"
                  r"|preemies?)(?!\w)", re.I)
_QUANTITY = re.compile(r"(?<!\w)\d+[\s-]?(?:pack|count|pk|pcs|pieces?)(?!\w)", re.I)
_HEAD_STOP = {"pack", "set", "kit", "count", "piece", "pieces", "pcs", "baby", "babies", "kids", "kid", "new",
              "one", "size", "and", "with", "for", "the", "edition", "version", "model", "color", "colour",
              "style", "design", "assorted", "collection", "each", "pk", "inch", "inches", "oz", "ounce", "colors",
              "colours", "packs", "months", "month", "years", "year", "multi", "multicolor", "pair", "pairs", "unisex", "boys", "girls", "boy", "girl"}
_LEXICON_STOP = set(COLOURS) | set(SIZES) | {w for p in PATTERNS for w in p.split()}

VISUAL_NAMES = {"colour", "color", "pattern", "style", "shape", "print", "object"}
IRRELEVANT_NAMES = {"brand", "manufacturer", "seller", "packaging", "background", "view", "wording"}
OBJECT_SOURCES = ("category", "product", "type")  # structured attributes naming the pictured object
VISUAL_CONTEXT = (("view", "front view"), ("background", "plain white background"))


def _lexicon(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.I)


LEXICONS = {"colour": _lexicon(COLOURS), "material": _lexicon(MATERIALS), "pattern": _lexicon(PATTERNS),
            "size": _lexicon(SIZES), "age": _AGE, "quantity": _QUANTITY}
LEXICON_DIGEST = hashlib.sha256(repr([(k, p.pattern) for k, p in LEXICONS.items()]
                                     + sorted(_HEAD_STOP)).encode()).hexdigest()[:12]


def head_noun(title: str, brand: str = "") -> str | None:
    """Product type from a title: the brand removed, the last content word before ' - ', ',', or a
    'for' / 'with' phrase. 'Acme Soft Bite Spoons for Infants, 5 Pack' -> 'Spoons'."""
    if brand:
        title = re.sub(re.escape(brand), " ", title, flags=re.I)
    title = title.strip(" -–,:|")
    main = re.split(r"\s[-–(]\s?|,|\s(?:for|with|by|in|from)\s", title, maxsplit=1, flags=re.I)[0]
    for word in reversed(re.findall(r"[A-Za-z][A-Za-z']+", main)):
        if word.casefold() not in _HEAD_STOP and word.casefold() not in _LEXICON_STOP and len(word) > 2:
            return word
    return None


def group_of(record: ItemRecord) -> str:
    """The category within which contrasting values are drawn."""
    return record.attributes.get("category") or record.category


def item_attributes(record: ItemRecord) -> dict[str, str]:
    """name -> value as written: the structured attributes, else those mined from title + description."""
    if record.attributes:
        return dict(record.attributes)
    found: dict[str, str] = {}
    product = head_noun(record.title, record.brand)
    if product:
        found["product"] = product
    for name, pattern in LEXICONS.items():
        match = pattern.search(record.title) or pattern.search(record.description)
        if match:
            found[name] = match.group(0)
    return found


def object_of(record: ItemRecord, attributes: dict[str, str]) -> str:
    """What a photo of the item shows: structured category/product/type, mined product, or category leaf."""
    for name in (*OBJECT_SOURCES, "product"):
        if attributes.get(name):
            return attributes[name]
    return record.category or "product"


@dataclass
class Vocabulary:
    """Value counts (case-folded) per (category, attribute name) and per name over the catalogue.
    Contrasting values prefer values seen at least ``min_count`` times (mined junk is rare)."""

    min_count: int = 3
    by_group: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_name: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @classmethod
    def build(cls, catalogue: Sequence[ItemRecord], min_count: int = 3) -> "Vocabulary":
        vocab = cls(min_count)
        for record in catalogue:
            attributes = item_attributes(record)
            attributes["object"] = object_of(record, attributes)
            for name, value in attributes.items():
                vocab.by_group[(group_of(record), name.casefold())][value.casefold()] += 1
                vocab.by_name[name.casefold()][value.casefold()] += 1
        return vocab

    def contrasts(self, group: str, name: str, current: str, avoid: Iterable[str] = ()) -> list[str]:
        """Sorted candidate values for ``name`` other than ``current``, first found of: ``group``'s values
        (frequent ones first) without ``avoid``, then with ``avoid``; then the same over the catalogue."""
        taken = {current.casefold()}
        avoided = taken | {a.casefold() for a in avoid}
        counts = [self.by_group.get((group, name.casefold()), Counter()), self.by_name.get(name.casefold(), Counter())]
        for count in counts:
            for exclude in (avoided, taken):
                for least in (self.min_count, 1):
                    pool = {v for v, n in count.items() if n >= least} - exclude
                    if pool:
                        return sorted(pool)
        return []


def match_case(template: str, value: str) -> str:
    """Write ``value`` in the letter case of ``template`` (UPPER, Title or as given)."""
    if len(template) > 1 and template.isupper():
        return value.upper()
    if template.istitle():
        return value.title()
    if template[:1].isupper():
        return value[:1].upper() + value[1:]
    return value


def free_spans(text: str, value: str, protected: Sequence[str]) -> list[tuple[int, int]]:
    """Whole-word, case-insensitive occurrences of ``value`` in ``text`` outside every ``protected`` value."""
    blocked = [m.span() for p in protected if p for m in re.finditer(re.escape(p), text, re.I)]
    return [m.span() for m in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.I)
            if not any(s < m.end() and m.start() < e for s, e in blocked)]


def substitute(text: str, replacements: Sequence[tuple[str, str]], protected: Sequence[str]) -> tuple[str, list[str]]:
    """Replace each old value's :func:`free_spans` by its new value (letter case kept); a span is replaced
    once (longer old values first). Returns the new text and the old values that were replaced."""
    edits: list[tuple[int, int, str]] = []
    applied = []
    for old, new in sorted(replacements, key=lambda r: len(r[0]), reverse=True):
        taken = [(start, end) for start, end, _ in edits]
        spans = [sp for sp in free_spans(text, old, protected) if not any(s < sp[1] and sp[0] < e for s, e in taken)]
        edits += [(start, end, match_case(text[start:end], new)) for start, end in spans]
        if spans:
            applied.append(old)
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text, applied
