"""``attribute`` backend: the analyse / intervene / balance steps with no LLM, deterministic under a seed.

Analyse: key and irrelevant attributes from :mod:`..vocabulary` (structured attributes, else mined from
the text); text key attributes are those written in the item text, the brand is irrelevant; the visual
modality is a description composed from the pictured object, colour, pattern and style, on a fixed
product-photo context (front view, plain white background) that stays irrelevant.
Intervene: each key attribute of the edited modalities gets a contrasting value drawn (seeded) from the
values the catalogue shows for that attribute in the item's category, substituted in place.
"""
from __future__ import annotations

import zlib
from typing import Any, Sequence

import numpy as np

from recbole_neggen.generation.backends.base import BACKENDS, Backend, Reply, Request
from recbole_neggen.generation.records import ItemRecord
from recbole_neggen.generation.schema import SOURCE_FIELD
from recbole_neggen.generation.templates import EDITED
from recbole_neggen.generation.vocabulary import (
    IRRELEVANT_NAMES, LEXICON_DIGEST, VISUAL_CONTEXT, VISUAL_NAMES, Vocabulary, free_spans, group_of,
    item_attributes, object_of, substitute,
)

ADJECTIVES = ("colour", "color", "pattern", "print", "style")


def describe(visual_key: Sequence[dict[str, str]]) -> str:
    """Visual key attributes -> 'Front view photo of red striped Spoons (shape: round) on a plain white
    background.' (the view and background are the irrelevant context)."""
    values = {a["name"]: a["value"] for a in visual_key}
    phrase = " ".join([values[n] for n in ADJECTIVES if n in values] + [values["object"]])
    extras = [f"{a['name']}: {a['value']}" for a in visual_key if a["name"] not in (*ADJECTIVES, "object")]
    view, background = (value for _, value in VISUAL_CONTEXT)
    detail = f" ({'; '.join(extras)})" if extras else ""
    return f"{view[:1].upper()}{view[1:]} photo of {phrase}{detail} on a {background}."


@BACKENDS.register("attribute")
class AttributeBackend(Backend):
    """No-LLM generator; call :meth:`prepare` with the catalogue first (the pipeline does)."""

    name = "attribute"
    can_repair = False

    def __init__(self) -> None:
        super().__init__()
        self.vocabulary: Vocabulary | None = None

    def settings(self) -> dict[str, Any]:
        return {"backend": self.name, "model": None, "lexicon": LEXICON_DIGEST}

    def prepare(self, catalogue: Sequence[ItemRecord]) -> None:
        self.vocabulary = Vocabulary.build(catalogue)

    def _answer(self, requests: Sequence[Request]) -> list[Reply]:
        if self.vocabulary is None:
            raise RuntimeError("AttributeBackend.prepare(catalogue) must run before complete()")
        return [Reply(data=self._analyse(r) if r.stage == "analyse" else self._intervene(r)) for r in requests]

    def _analyse(self, request: Request) -> dict[str, Any]:
        record = request.item
        attributes = item_attributes(record)
        irrelevant = {n: v for n, v in attributes.items() if n.casefold() in IRRELEVANT_NAMES}
        if record.brand:
            irrelevant.setdefault("brand", record.brand)
        text_irrelevant = [{"name": n, "value": v} for n, v in irrelevant.items()
                           if v.casefold() in request.source_text.casefold()]
        protected = [a["value"] for a in text_irrelevant]
        text_key: list[dict[str, str]] = []
        visual_key = [{"name": "object", "value": object_of(record, attributes)}]
        for name, value in attributes.items():
            if name.casefold() in IRRELEVANT_NAMES or name.casefold() == "object":
                continue
            target = visual_key if name.casefold() in VISUAL_NAMES else text_key
            if target is text_key and not free_spans(request.source_text, value, protected):
                continue  # not written in the text (or only inside an irrelevant value): nothing to edit
            if all(a["value"].casefold() != value.casefold() for a in target):
                target.append({"name": name, "value": value})
        return {
            "visual_description": describe(visual_key),
            "text": {"key": text_key, "irrelevant": text_irrelevant},
            "visual": {"key": visual_key, "irrelevant": [{"name": n, "value": v} for n, v in VISUAL_CONTEXT]},
        }

    def _intervene(self, request: Request) -> dict[str, Any]:
        assert self.vocabulary is not None and request.analysis is not None and request.tag is not None
        analysis, group = request.analysis, group_of(request.item)
        answer: dict[str, Any] = {"text": None, "visual_description": None, "changes": []}
        for modality in EDITED[request.tag]:
            source = request.source_text if modality == "text" else analysis["visual_description"]
            rng = np.random.default_rng([request.seed, zlib.crc32(modality.encode())])
            plan = []
            for attr in analysis[modality]["key"]:
                options = self.vocabulary.contrasts(group, attr["name"], attr["value"], request.avoid)
                if options:
                    plan.append((attr, options[int(rng.integers(len(options)))]))
            protected = [a["value"] for a in analysis[modality]["irrelevant"]]
            answer[SOURCE_FIELD[modality]], applied = substitute(source, [(a["value"], to) for a, to in plan], protected)
            answer["changes"] += [{"modality": modality, "name": a["name"], "from": a["value"], "to": to}
                                  for a, to in plan if a["value"] in applied]
        return answer
