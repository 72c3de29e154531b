"""The no-LLM backend: mined attributes, same-category contrasts, and answers that pass the checks."""
from __future__ import annotations

from collections import Counter

import pytest

from recbole_neggen.generation.backends import BACKENDS, AttributeBackend, Request
from recbole_neggen.generation.pipeline import derive_seed, plan_tags
from recbole_neggen.generation.records import ItemRecord
from recbole_neggen.generation.schema import validate_analysis, validate_variant
from recbole_neggen.generation.templates import TAGS
from recbole_neggen.generation.vocabulary import Vocabulary, head_noun, item_attributes, substitute


def test_head_noun_and_mined_attributes():
    assert head_noun("Learning Curve Soft Bite Spoons, 5 Pack") == "Spoons"
    assert head_noun("Baby Tracker® - Daily Childcare Journal") == "Tracker"
    assert head_noun("Red Blue Set") is None
    item = ItemRecord("x", title="Soft Bite Spoons, 5 Pack", description="4 months & up. Stainless steel handles in red.")
    assert item_attributes(item) == {"product": "Spoons", "colour": "red", "material": "Stainless steel",
                                     "age": "4 months & up", "quantity": "5 Pack"}
    structured = ItemRecord("y", title="Bib", attributes={"colour": "red"})
    assert item_attributes(structured) == {"colour": "red"}


def test_contrasts_stay_in_the_category_prefer_frequent_values_and_avoid():
    items = [ItemRecord(str(i), attributes={"category": cat, "colour": col})
             for i, (cat, col) in enumerate([("bib", "red"), ("bib", "blue"), ("bib", "blue"), ("bib", "blue"),
                                             ("bib", "green"), ("rattle", "pink")])]
    vocab = Vocabulary.build(items, min_count=3)
    assert vocab.contrasts("bib", "colour", "red") == ["blue"]  # the only frequent one
    assert vocab.contrasts("bib", "colour", "blue") == ["green", "red"]
    assert vocab.contrasts("bib", "colour", "red", avoid=["blue"]) == ["green"]
    assert vocab.contrasts("rattle", "colour", "pink") == ["blue"]  # fallback: the whole catalogue
    assert vocab.contrasts("bib", "colour", "red", avoid=["blue", "green"]) == ["blue"]  # nothing fresh left
    assert vocab.contrasts("bib", "shape", "round") == []


def test_substitute_keeps_case_and_protected_spans():
    text = "Cotton Tale cotton bib. COTTON inside; cottonwood stays."
    new, applied = substitute(text, [("cotton", "bamboo"), ("bib", "towel")], protected=["Cotton Tale"])
    assert new == "Cotton Tale bamboo towel. BAMBOO inside; cottonwood stays."
    assert sorted(applied) == ["bib", "cotton"]
    assert substitute("no match", [("wool", "silk")], [])[1] == []


def run(backend, stage, item, **kw):
    source = item.source_text(800)
    return backend.complete([Request(stage, item, (), kw.pop("seed", 1), source, **kw)])[0].data


def test_answers_pass_validation_for_every_variant_type(catalogue):
    backend = BACKENDS.get("attribute")()
    assert isinstance(backend, AttributeBackend) and not backend.can_repair
    with pytest.raises(RuntimeError, match="prepare"):
        run(backend, "analyse", catalogue[0])
    backend.prepare(catalogue)
    for item in catalogue:
        analysis = validate_analysis(run(backend, "analyse", item))
        source = item.source_text(800)
        for tag in TAGS:
            answer = run(backend, "intervene", item, analysis=analysis, tag=tag, seed=derive_seed(0, item.item_id, tag))
            out = validate_variant(answer, tag=tag, analysis=analysis, source_text=source)
            if tag == "text":
                assert out["visual_description"] == analysis["visual_description"]
            if tag == "visual":
                assert out["text"] == source
            if item.brand and tag != "visual":
                assert item.brand in out["text"]  # irrelevant value kept


def test_structured_contrasts_come_from_the_same_category(catalogue):
    backend = AttributeBackend()
    backend.prepare(catalogue)
    bib = catalogue[0]  # s1: red cotton bib
    analysis = validate_analysis(run(backend, "analyse", bib))
    assert {a["name"] for a in analysis["text"]["key"]} == {"category", "material"}
    assert {a["name"] for a in analysis["visual"]["key"]} == {"object", "colour"}
    assert analysis["text"]["irrelevant"] == [{"name": "brand", "value": "Acme"}]
    bib_colours = {"blue", "green", "yellow"}
    seen = Counter()
    for seed in range(12):
        answer = run(backend, "intervene", bib, analysis=analysis, tag="visual", seed=seed)
        change = {c["name"]: c["to"] for c in answer["changes"]}
        seen[change["colour"]] += 1
        assert change["object"] == "rattle"  # the only other object value
    assert set(seen) <= bib_colours | {"pink", "white"} and set(seen) & bib_colours


def test_deterministic_under_a_seed(catalogue):
    first, second = AttributeBackend(), AttributeBackend()
    first.prepare(catalogue)
    second.prepare(catalogue)
    item = catalogue[-1]
    analysis = run(first, "analyse", item)
    answers = [run(b, "intervene", item, analysis=analysis, tag="both", seed=5) for b in (first, second)]
    assert answers[0] == answers[1]
    others = [run(first, "intervene", item, analysis=analysis, tag="both", seed=s) for s in range(6, 12)]
    assert any(o != answers[0] for o in others)


def test_round_robin_balances_variant_types():
    counts = Counter(tag for p in range(300) for tag in plan_tags(p, 4))
    assert counts == Counter({"text": 400, "visual": 400, "both": 400})
    assert all(set(plan_tags(p, 3)) == set(TAGS) for p in range(50))
    assert plan_tags(0, 4) == ["text", "visual", "both", "text"]


def test_brand_words_and_repeated_values_are_not_edited(catalogue):
    assert head_noun("The First Years - Easy Comfort Manual Breast Pump", "The First Years") == "Pump"
    assert head_noun("Kushies 5 Pack Reusable Ultra Diapers for Infants") == "Diapers"
    backend = AttributeBackend()
    item = ItemRecord("x", title="Infants Cup for Infants", brand="Infants Co",
                      description="A cup for infants, from Infants Co.")
    backend.prepare([*catalogue, item])
    analysis = validate_analysis(run(backend, "analyse", item))
    values = [a["value"].casefold() for a in analysis["text"]["key"]]
    assert len(values) == len(set(values))  # 'Infants' as product and age is listed once
    for tag in TAGS:
        answer = run(backend, "intervene", item, analysis=analysis, tag=tag, seed=3)
        validate_variant(answer, tag=tag, analysis=analysis, source_text=item.source_text(800))
