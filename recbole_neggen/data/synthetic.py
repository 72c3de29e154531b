"""Seeded synthetic multi-modal dataset in the prepared layout (tests, demos, scaling benchmarks).

Items have five attributes; users' choices depend only on the KEY ones (category, colour) plus an
item popularity term, and ignore the irrelevant ones (material, size, style). Each item gets a
32x32 PNG (shape = category, fill = colour, scale = size, texture = material, background = style;
items with identical attributes share one file, ``images/<attribute values>.png``), a
title/description, text features and image features.

Text features default to :class:`~recbole_neggen.encoders.HashingTextEncoder` (deterministic, fast;
not a learned encoder); ``text_encoder="minilm"`` uses all-MiniLM-L6-v2. Image features are the
documented pixel-statistics default (:class:`~recbole_neggen.encoders.PixelStatsImageEncoder`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from recbole_neggen.data import files
from recbole_neggen.data.prepare import PrepareResult, encode_items, run_cached
from recbole_neggen.data.split import mmrec_split
from recbole_neggen.encoders import TEXT_ENCODERS, PixelStatsImageEncoder, item_text

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "category": ("bottle", "stroller", "blanket", "toy", "bib", "pacifier", "crib", "car seat"),
    "colour": ("red", "blue", "green", "yellow", "purple", "orange", "pink", "grey"),
    "material": ("cotton", "plastic", "wood", "silicone", "wool"),
    "size": ("small", "medium", "large", "extra large"),
    "style": ("classic", "modern", "playful", "minimalist", "vintage"),
}
KEY_ATTRIBUTES = ("category", "colour")
BRANDS = ("Acme Baby", "Little Steps", "Nestling", "Bloom & Co", "Tiny Tots")
_RGB = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 60), "yellow": (235, 210, 40),
        "purple": (140, 60, 190), "orange": (245, 140, 30), "pink": (240, 130, 190), "grey": (128, 128, 128)}
_BACKGROUND = {"classic": (250, 250, 245), "modern": (235, 240, 250), "playful": (250, 240, 230),
               "minimalist": (255, 255, 255), "vintage": (240, 230, 210)}
_SCALE = {"small": 0.5, "medium": 0.7, "large": 0.85, "extra large": 1.0}


def render_item(attrs: dict[str, str], size: int = 32) -> Image.Image:
    """Draw one item: shape by category, fill by colour, scale by size, texture by material."""
    img = Image.new("RGB", (size, size), _BACKGROUND[attrs["style"]])
    draw = ImageDraw.Draw(img)
    half = size * _SCALE[attrs["size"]] / 2
    c = size / 2
    box = (c - half, c - half, c + half - 1, c + half - 1)
    fill = _RGB[attrs["colour"]]
    shape = ATTRIBUTES["category"].index(attrs["category"])
    if shape == 0:
        draw.ellipse(box, fill=fill)
    elif shape == 1:
        draw.rectangle(box, fill=fill)
    elif shape == 2:
        draw.polygon([(c, c - half), (c + half, c + half), (c - half, c + half)], fill=fill)
    elif shape == 3:
        draw.polygon([(c, c - half), (c + half, c), (c, c + half), (c - half, c)], fill=fill)
    elif shape == 4:
        w = half / 3
        draw.rectangle((c - w, c - half, c + w, c + half), fill=fill)
        draw.rectangle((c - half, c - w, c + half, c + w), fill=fill)
    elif shape == 5:
        draw.ellipse(box, outline=fill, width=max(2, int(half / 3)))
    elif shape == 6:
        draw.rectangle((c - half, c - half / 3, c + half, c + half / 3), fill=fill)
    else:
        draw.rectangle((c - half / 3, c - half, c + half / 3, c + half), fill=fill)
    texture = ATTRIBUTES["material"].index(attrs["material"])
    for k in range(0, size, 4):
        if texture == 1:
            draw.line((0, k, size, k), fill=(255, 255, 255))
        elif texture == 2:
            draw.line((k, 0, k, size), fill=(90, 60, 30))
        elif texture == 4:
            draw.point([(k, j) for j in range(0, size, 4)], fill=(0, 0, 0))
    return img


def _attributes(rng: np.random.Generator, n_items: int) -> dict[str, np.ndarray]:
    return {a: rng.integers(len(v), size=n_items) for a, v in ATTRIBUTES.items()}


class ItemSampler:
    """Draws items for user u with P(i) ∝ exp(pref_cat[u, cat_i] + pref_col[u, col_i]) * pop_i.

    Two stages: a (category, colour) group g with weight exp(pref) * (pop mass of g), then an item of
    g ∝ pop_i via one ``searchsorted`` on keys g + (cumulative share inside g) in (g, g + 1].
    O(draws) per call instead of O(n_items). Irrelevant attributes never enter P.
    """

    def __init__(self, category: np.ndarray, colour: np.ndarray, pref_cat: np.ndarray, pref_col: np.ndarray,
                 pop: np.ndarray) -> None:
        self.pref_cat, self.pref_col = pref_cat, pref_col                  # [U, C], [U, K]
        n_col = pref_col.shape[1]
        self.n_groups = pref_cat.shape[1] * n_col
        group = category * n_col + colour                                   # [n_items]
        self.group_mass = np.bincount(group, weights=pop, minlength=self.n_groups)
        self.by_group = np.argsort(group, kind="stable")
        sorted_group = group[self.by_group]
        cum = np.cumsum(pop[self.by_group] / self.group_mass[sorted_group])
        starts = np.searchsorted(sorted_group, np.arange(self.n_groups))
        before = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
        self.keys = sorted_group + cum - before[sorted_group]
        ends = np.r_[np.flatnonzero(np.diff(sorted_group)), group.size - 1]
        self.keys[ends] = sorted_group[ends] + 1.0                          # exact group ends

    def draw(self, rng: np.random.Generator, u: int, m: int) -> np.ndarray:
        """m item indices for user u, drawn with replacement. Returns int64 [m]."""
        weights = np.exp(self.pref_cat[u][:, None] + self.pref_col[u][None, :]).ravel() * self.group_mass
        g = rng.choice(self.n_groups, size=m, p=weights / weights.sum())
        return self.by_group[np.searchsorted(self.keys, g + rng.random(m), side="right")]


def _interactions(rng: np.random.Generator, codes: dict[str, np.ndarray], n_users: int,
                  mean_per_user: float) -> tuple[np.ndarray, np.ndarray]:
    """(users int64 [N], items int64 [N]): user u picks 5 + Poisson(mean - 5) distinct items by
    successive sampling from :class:`ItemSampler` (duplicates redrawn; same law as Gumbel top-k)."""
    n_items = codes["category"].shape[0]
    sampler = ItemSampler(codes["category"], codes["colour"],
                          rng.normal(0, 1.5, size=(n_users, len(ATTRIBUTES["category"]))),
                          rng.normal(0, 1.5, size=(n_users, len(ATTRIBUTES["colour"]))),
                          np.exp(rng.normal(0, 0.5, size=n_items)))
    counts = np.minimum(5 + rng.poisson(max(mean_per_user - 5, 0), size=n_users), n_items // 2)
    users, items = [], []
    for u in tqdm(range(n_users), desc="synthetic interactions", unit="user", mininterval=1.0):
        chosen: dict[int, None] = {}
        while len(chosen) < counts[u]:
            chosen.update(dict.fromkeys(sampler.draw(rng, u, 2 * int(counts[u])).tolist()))
        items.append(np.fromiter(chosen, dtype=np.int64)[: counts[u]])
        users.append(np.full(counts[u], u, dtype=np.int64))
    return np.concatenate(users), np.concatenate(items)


def make_synthetic(
    out_root: str | Path, name: str = "synthetic", n_users: int = 300, n_items: int = 200,
    mean_per_user: float = 20.0, seed: int = 2024, text_encoder: str = "hashing", force: bool = False,
) -> PrepareResult:
    """Write a synthetic dataset to ``<out_root>/<name>/`` (prepared layout + ``images/``); idempotent.

    Default size: 300 users, 200 items, ~6k interactions. Provenance lists the key attributes.
    """
    if n_items < 10 or n_users < 1:
        raise ValueError(f"need n_items >= 10 and n_users >= 1, got {n_items}, {n_users}")
    out_dir = Path(out_root) / name
    params = {"n_users": n_users, "n_items": n_items, "mean_per_user": mean_per_user, "seed": seed}
    key = {"format": "synthetic", **params, "text_encoder": text_encoder, "image_encoder": PixelStatsImageEncoder.name}

    def build() -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        codes = _attributes(rng, n_items)
        users, items = _interactions(rng, codes, n_users, mean_per_user)
        labels = mmrec_split(users, seed)
        counts: dict[str, Any] = {"splits": files.write_splits(out_dir, name, users.astype(str), items.astype(str), labels),
                                  "users": n_users, "items": int(np.unique(items).size)}
        image_dir = out_dir / "images"
        image_dir.mkdir(parents=True, exist_ok=True)
        brands = rng.integers(len(BRANDS), size=n_items)
        # items with identical attributes look identical: one image file per attribute combination
        combos, combo_of_item = np.unique(np.stack([codes[a] for a in ATTRIBUTES], axis=1), axis=0, return_inverse=True)
        image_names = []
        for combo in tqdm(combos, desc="synthetic images", unit="image"):
            attrs = {a: ATTRIBUTES[a][c] for a, c in zip(ATTRIBUTES, combo)}
            image_names.append(f"images/{'-'.join(v.replace(' ', '_') for v in attrs.values())}.png")
            render_item(attrs).save(out_dir / image_names[-1])
        records = []
        for k in range(n_items):
            attrs = {a: ATTRIBUTES[a][codes[a][k]] for a in ATTRIBUTES}
            records.append({
                "item_id": str(k), "title": f"{attrs['style'].title()} {attrs['colour']} {attrs['category']}",
                "brand": BRANDS[brands[k]], "categories": ["Baby", attrs["category"]],
                "description": f"A {attrs['size']} {attrs['colour']} {attrs['category']} made of "
                               f"{attrs['material']}, in a {attrs['style']} style.",
                "image": image_names[combo_of_item[k]], "attributes": attrs})
        counts["item_records"] = files.write_jsonl(files.items_path(out_dir, name), records)
        ids = [r["item_id"] for r in records]
        text = TEXT_ENCODERS.get(text_encoder)()
        encode_items(text, ids, [item_text(r) for r in records], files.feature_path(out_dir, name, "text"),
                     out_dir / ".work", "text", sort_by_length=True)
        image = PixelStatsImageEncoder()
        image_feat = image.encode([out_dir / n for n in image_names])[combo_of_item]
        files.write_features(files.feature_path(out_dir, name, "image"), ids, image_feat)
        counts["features"] = {"text": {"encoder": text.name, "count": n_items, "dim": text.dim},
                              "image": {"encoder": image.name, "count": n_items, "dim": image.dim,
                                        "distinct_images": len(combos)}}
        counts["key_attributes"] = list(KEY_ATTRIBUTES)
        counts["irrelevant_attributes"] = [a for a in ATTRIBUTES if a not in KEY_ATTRIBUTES]
        return counts

    return run_cached(out_dir, name, key, build, force)
