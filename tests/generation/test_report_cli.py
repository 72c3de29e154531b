"""report.md and the ``generate`` CLI subcommand."""
from __future__ import annotations

import json
import logging

import numpy as np
from gen_helpers import write_jsonl

from recbole_neggen.cli import main as cli_main
from recbole_neggen.generation import AttributeBackend, NegativeBank, generate_bank, write_report
from recbole_neggen.generation.records import ItemRecord
from recbole_neggen.generation.report import highlight


def test_report_shows_items_beside_negatives(catalogue, encoder, tmp_path):
    odd = ItemRecord("odd", title="Bib *bold* | pipe <b>", description="A red cotton bib for babies.")
    bank = generate_bank([*catalogue, odd, ItemRecord("blank")], AttributeBackend(), tmp_path / "bank", k=3,
                         encoder=encoder, progress=False)
    path = write_report(tmp_path / "bank", n_items=100)
    text = path.read_text()
    assert path == tmp_path / "bank" / "report.md"
    assert "| intervene | 39 | 0 | 0 | 100.0% |" in text and "| analyse | 13 | 0 | 0 | 100.0% |" in text
    assert "## Item `s1` (ok)" in text and "## Item `blank` (failed)" in text and "item has no text" in text
    change = bank.entry("s1").variants[0].changes[0]
    assert f"~~{change['from']}~~ → **{change['to']}**" in text
    assert r"Bib \*bold\* \| pipe" in text
    assert highlight("A Red bib, red again", ["red"]) == "A **Red** bib, **red** again"


def test_cli_generate_defaults_to_attribute_and_is_resumable(tmp_path, caplog, capsys):
    rows = [{"item_id": i, "title": t, "description": d, "categories": "[['Baby']]", "brand": "Acme"}
            for i, (t, d) in enumerate([("Red Cotton Bib", "Soft cotton bib for newborns."),
                                        ("Blue Plastic Cup", "Cup for toddlers, 2-pack."),
                                        ("Green Wooden Rattle", "Rattle, 6-12 months.")])]
    write_jsonl(tmp_path / "mini.items.jsonl", rows)
    args = ["generate", "--dataset", "mini", "--dataset-dir", str(tmp_path), "--encoder", "hashing",
            "--k", "3", "--limit", "2", "--out", str(tmp_path / "bank"), "--report-items", "5"]
    with caplog.at_level(logging.INFO):
        assert cli_main(args) == 0
    assert "no model configured: using the attribute backend" in caplog.text
    summary = json.loads(capsys.readouterr().out)
    assert summary["items"] == 2 and summary["stats"]["items"]["ok"] == 2
    assert (tmp_path / "bank" / "report.md").is_file()
    args[args.index("--limit") + 1] = "3"
    assert cli_main(args) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 3
    assert cli_main([*args, "--seed", "1"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_cli_errors_are_clear(tmp_path, capsys):
    assert cli_main(["generate", "--items", str(tmp_path / "nope.jsonl"), "--encoder", "hashing"]) == 2
    assert "items file not found" in capsys.readouterr().err
    write_jsonl(tmp_path / "x.jsonl", [{"item_id": "a", "title": "Bib"}])
    assert cli_main(["generate", "--items", str(tmp_path / "x.jsonl"), "--backend", "transformers",
                     "--encoder", "hashing"]) == 2
    assert "the transformers backend needs --model" in capsys.readouterr().err
    assert cli_main(["generate", "--items", str(tmp_path / "x.jsonl"), "--backend", "gpt",
                     "--encoder", "hashing"]) == 2
    assert "unknown generation backend 'gpt'; choose one of: attribute, openai, transformers" in capsys.readouterr().err


def test_cli_image_features_add_the_ridge_space(tmp_path, capsys):
    write_jsonl(tmp_path / "x.jsonl", [{"item_id": i, "title": t, "description": "Soft cotton, 2-pack."}
                                       for i, t in enumerate(["Red Bib", "Blue Cup", "Green Rattle"])])
    np.save(tmp_path / "img.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    base = ["generate", "--items", str(tmp_path / "x.jsonl"), "--encoder", "hashing", "--report-items", "0"]
    assert cli_main([*base, "--out", str(tmp_path / "bank"), "--image-features", str(tmp_path / "img.npy")]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 3
    assert NegativeBank.open(tmp_path / "bank").spaces == ("image", "text", "visual")
    np.save(tmp_path / "bad.npy", np.zeros((2, 4), np.float32))
    assert cli_main([*base, "--out", str(tmp_path / "b2"), "--image-features", str(tmp_path / "bad.npy")]) == 2
    assert "bad.npy: shape (2, 4), expected [3 items" in capsys.readouterr().err
