"""items.jsonl reading: fields, cleaning, and errors that name file, line and field."""
from __future__ import annotations

import pytest
from PIL import Image

from recbole_neggen.generation.records import ItemRecord, load_items
from gen_helpers import write_jsonl


def test_reads_baby_and_prepared_rows(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    write_jsonl(tmp_path / "x.items.jsonl", [
        {"item_id": 7, "title": "Baby Tracker&reg; <b>Log</b>", "brand": "", "categories": "[['Baby', 'Gear']]",
         "description": "", "asin": "X", "price": ""},
        {"item_id": "tok", "title": "Bib", "categories": ["Baby", "Feeding"], "image": "a.png",
         "attributes": {"colour": "red", "size": 3}},
    ])
    first, second = load_items(tmp_path / "x.items.jsonl")
    assert first.item_id == "7" and first.title == "Baby Tracker® Log"
    assert first.categories == ("Baby", "Gear") and first.category == "Gear"
    assert second.image == (tmp_path / "a.png").resolve()
    assert second.attributes == {"colour": "red", "size": "3"}


@pytest.mark.parametrize("rows, message", [
    ([{"title": "x"}], ":1: field 'item_id' is missing"),
    ([{"item_id": "a", "title": 3}], ":1: field 'title' must be a string"),
    ([{"item_id": "a"}, {"item_id": "a"}], ":2: field 'item_id' 'a' repeats line 1"),
    ([{"item_id": "a", "image": "missing.png"}], ":1: field 'image' names a missing file"),
    ([{"item_id": "a", "attributes": ["red"]}], ":1: field 'attributes' must be an object"),
    ([{"item_id": "a", "attributes": {"colour": None}}], ":1: field 'attributes.colour' must be a string or a number"),
    ([{"item_id": True}], ":1: field 'item_id' must be a non-empty string or an integer"),
])
def test_bad_rows_name_file_line_and_field(tmp_path, rows, message):
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, rows)
    with pytest.raises(ValueError, match=str(path).replace(".", r"\.") + message.replace("(", r"\(").replace(")", r"\)")):
        load_items(path)


def test_invalid_json_and_empty_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"item_id": "a"}\n\n{"item_id": \n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:3: invalid JSON"):
        load_items(path)
    path.write_text("\n")
    with pytest.raises(ValueError, match="no item records"):
        load_items(path)
    with pytest.raises(FileNotFoundError, match="items file not found"):
        load_items(tmp_path / "nope.jsonl")


def test_source_text_is_labelled_and_cut_at_a_word_boundary():
    item = ItemRecord("a", title="Bib", brand="Acme", categories=("Baby", "Feeding"),
                      description="word " * 100, attributes={"colour": "red"})
    text = item.source_text(120)
    assert len(text) <= 120
    assert text.startswith("Title: Bib\nBrand: Acme\nCategory: Baby > Feeding\nAttributes: colour: red\nDescription: word")
    assert text.endswith("word")
    assert ItemRecord("b").source_text(100) == "" and not ItemRecord("b").has_text
