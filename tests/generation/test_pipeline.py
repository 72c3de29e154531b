"""generate_bank + NegativeBank: layout, features, resume after torn writes and kill -9, no-op re-runs,
settings checks, the repair-once-then-reject policy, and the feature spaces."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from recbole_neggen.encoders import HashingTextEncoder
from recbole_neggen.generation import AttributeBackend, NegativeBank, generate_bank
from recbole_neggen.generation.backends import Backend, Reply
from recbole_neggen.generation.features import fit_ridge
from recbole_neggen.generation.records import ItemRecord
from recbole_neggen.generation.schema import validate_variant
from recbole_neggen.generation.templates import TAGS

REPO = Path(__file__).resolve().parents[2]


def build(catalogue, out, encoder, **kw):
    kw.setdefault("batch_size", 3)
    return generate_bank(catalogue, AttributeBackend(), out, k=4, seed=0, encoder=encoder, progress=False, **kw)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != "provenance.json"}


def test_bank_layout_features_and_provenance(catalogue, encoder, tmp_path):
    bank = build(catalogue, tmp_path / "bank", encoder)
    assert {p.name for p in (tmp_path / "bank").iterdir()} == {"bank.jsonl", "provenance.json", "text.f32", "visual.f32"}
    assert len(bank) == len(catalogue) and bank.spaces == ("text", "visual")
    s = bank.settings
    assert s["backend"]["backend"] == "attribute" and s["k"] == 4 and s["seed"] == 0
    assert s["templates"]["version"] == "v1" and len(s["dataset_hash"]) == 16
    assert s["spaces"]["visual"] == {"field": "visual_description", "encoder": "hashing-unigram-16", "map": "encoder"}
    assert bank.stats["items"] == {"ok": len(catalogue), "partial": 0, "failed": 0}
    assert bank.stats["answers"]["intervene"] == {"parsed": 4 * len(catalogue), "repaired": 0, "rejected": 0}
    feats, pos, tags = bank.features("text"), bank.positive_features("visual"), bank.modalities
    for entry in bank.items():
        assert [v.index for v in entry.variants] == [0, 1, 2, 3]
        assert feats[entry.item].shape == (4, 16) and pos[entry.item].shape == (16,)
        assert tags[entry.item] == tuple(v.modality for v in entry.variants)
        np.testing.assert_allclose(feats[entry.item][0], encoder.encode([entry.variants[0].text])[0], rtol=1e-6)
        np.testing.assert_allclose(pos[entry.item], encoder.encode([entry.visual_description])[0], rtol=1e-6)
        for v in entry.variants:  # what is stored passes the checks again
            validate_variant({"text": v.text, "visual_description": v.visual_description, "changes": list(v.changes)},
                             tag=v.modality, analysis=entry.analysis, source_text=entry.text)
    counts = {t: sum(m.count(t) for m in tags.values()) for t in TAGS}
    assert max(counts.values()) - min(counts.values()) <= 1
    aligned = bank.aligned("text", ["s2", "missing", "s1"])
    assert aligned.negatives.shape == (3, 4, 16) and aligned.mask.tolist() == [[True] * 4, [False] * 4, [True] * 4]
    np.testing.assert_array_equal(aligned.negatives[2], feats["s1"])
    assert aligned.modality[1].tolist() == [-1] * 4 and aligned.modality[0].tolist() == [TAGS.index(t) for t in tags["s2"]]
    with pytest.raises(ValueError, match="unknown feature space 'image'"):
        bank.features("image")


def test_item_without_text_fails_with_its_reason(catalogue, encoder, tmp_path):
    bank = build([*catalogue, ItemRecord("empty")], tmp_path / "bank", encoder)
    entry = bank.entry("empty")
    assert entry.status == "failed" and entry.row is None and entry.variants == ()
    assert entry.log == ({"stage": "input", "outcome": "rejected", "error": "item has no text (and no image the model can see)"},)
    assert "empty" not in bank.features("text") and bank.stats["items"]["failed"] == 1


class CountingBackend(AttributeBackend):
    calls = 0

    def _answer(self, requests):
        CountingBackend.calls += len(requests)
        return super()._answer(requests)


def test_rerun_is_a_noop_and_other_settings_are_refused(catalogue, encoder, tmp_path):
    out = tmp_path / "bank"
    build(catalogue, out, encoder)
    before = snapshot(out)
    CountingBackend.calls = 0
    generate_bank(catalogue, CountingBackend(), out, k=4, seed=0, encoder=encoder, progress=False)
    assert CountingBackend.calls == 0 and snapshot(out) == before
    with pytest.raises(ValueError, match=r"other settings.*seed: 0 \(bank\) != 1 \(now\)"):
        generate_bank(catalogue, AttributeBackend(), out, k=4, seed=1, encoder=encoder, progress=False)
    with pytest.raises(ValueError, match="k: 4 .* != 3"):
        generate_bank(catalogue, AttributeBackend(), out, k=3, seed=0, encoder=encoder, progress=False)
    with pytest.raises(ValueError, match="spaces"):
        generate_bank(catalogue, AttributeBackend(), out, k=4, seed=0, encoder=HashingTextEncoder(8), progress=False)


def test_limit_then_extend_equals_one_run(catalogue, encoder, tmp_path):
    build(catalogue, tmp_path / "whole", encoder)
    build(catalogue, tmp_path / "parts", encoder, limit=4)
    assert len(NegativeBank.open(tmp_path / "parts")) == 4
    build(catalogue, tmp_path / "parts", encoder, batch_size=5)
    assert snapshot(tmp_path / "parts") == snapshot(tmp_path / "whole")


def test_torn_tail_is_cut_on_resume_and_tolerated_on_read(catalogue, encoder, tmp_path):
    build(catalogue, tmp_path / "whole", encoder)
    out = tmp_path / "torn"
    build(catalogue, out, encoder, limit=6)
    with (out / "bank.jsonl").open("ab") as f:
        f.write(b'{"item": "t1", "status": "ok", "vari')
    with (out / "text.f32").open("ab") as f:
        f.write(b"\x00" * 16 * 4 * 3)
    assert len(NegativeBank.open(out)) == 6  # reading ignores the torn line, changes nothing
    build(catalogue, out, encoder)
    assert snapshot(out) == snapshot(tmp_path / "whole")


def test_missing_feature_rows_are_reported_as_corruption(catalogue, encoder, tmp_path):
    out = tmp_path / "bank"
    build(catalogue, out, encoder, limit=3)
    with (out / "visual.f32").open("r+b") as f:
        f.truncate(10)
    with pytest.raises(ValueError, match="visual.f32: 10 bytes, but bank.jsonl refers to"):
        build(catalogue, out, encoder)
    with pytest.raises(ValueError, match="holds 0 rows"):
        NegativeBank.open(out).features("visual")


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {helpers!r})
    from gen_helpers import structured_items, text_items
    from recbole_neggen.encoders import HashingTextEncoder
    from recbole_neggen.generation import AttributeBackend, generate_bank

    class SlowEncoder(HashingTextEncoder):
        def encode(self, texts, show_progress=False):
            time.sleep(0.3)
            return super().encode(texts, show_progress=False)

    generate_bank(structured_items() + text_items(), AttributeBackend(), {out!r}, k=4, seed=0, batch_size=2,
                  encoder=SlowEncoder(dim=16), progress=False)
""")


def test_kill_9_loses_at_most_the_batch_in_flight(catalogue, encoder, tmp_path):
    out = tmp_path / "killed"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(helpers=str(Path(__file__).parent), out=str(out)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    bank_file = out / "bank.jsonl"
    deadline = time.monotonic() + 120
    while (not bank_file.is_file() or bank_file.read_bytes().count(b"\n") < 2) and child.poll() is None:
        assert time.monotonic() < deadline, "child never committed a batch"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
    committed = len(NegativeBank.open(out))
    assert 2 <= committed < len(catalogue)
    build(catalogue, tmp_path / "whole", encoder)
    bank = build(catalogue, out, encoder)
    assert len(bank) == len(catalogue)
    assert snapshot(out) == snapshot(tmp_path / "whole")


class Flaky(Backend):
    """Wraps the attribute backend as a chatty model: per item 'ok', 'repairable', 'garbage' or 'down'."""

    name = "flaky"

    def __init__(self, modes):
        super().__init__()
        self.inner, self.modes, self.seen = AttributeBackend(), modes, []

    def settings(self):
        return {"backend": self.name}

    def prepare(self, catalogue):
        self.inner.prepare(catalogue)

    def _answer(self, requests):
        replies = []
        for request, good in zip(requests, self.inner.complete(requests)):
            repair = len(request.messages) > 1
            self.seen.append((request.item.item_id, request.stage, repair, request.messages[-1]["content"]))
            mode = self.modes.get(request.item.item_id, "ok")
            if mode == "down":
                replies.append(Reply(error="HTTP 503: overloaded"))
            elif mode == "garbage" or (mode == "repairable" and not repair):
                replies.append(Reply(text="I am sorry, I cannot help with {that"))
            else:
                replies.append(Reply(text="Sure!\n```json\n" + json.dumps(good.data) + "\n```"))
        return replies


def test_one_repair_then_reject_and_count(catalogue, encoder, tmp_path):
    backend = Flaky({"s1": "repairable", "s2": "garbage", "s3": "down"})
    bank = generate_bank(catalogue, backend, tmp_path / "bank", k=3, encoder=encoder, progress=False)
    assert bank.entry("s1").status == "ok"
    assert {e["outcome"] for e in bank.entry("s1").log} == {"repaired"}
    assert bank.entry("s2").status == "failed" and bank.entry("s3").status == "failed"
    assert bank.entry("s2").log[0]["error"] == "no complete JSON object found in the answer"
    assert bank.entry("s3").log == ({"stage": "analyse", "outcome": "rejected", "error": "HTTP 503: overloaded"},)
    asked = [(i, stage, repair) for i, stage, repair, _ in backend.seen]
    assert asked.count(("s2", "analyse", True)) == 1 and ("s3", "analyse", True) not in asked
    repair_turns = [m for i, _, repair, m in backend.seen if repair and i == "s1"]
    assert all("no complete JSON object" in m for m in repair_turns) and len(repair_turns) == 4
    n = len(catalogue)
    assert bank.stats["answers"] == {
        "analyse": {"parsed": n - 3, "repaired": 1, "rejected": 2},
        "intervene": {"parsed": 3 * (n - 3), "repaired": 3, "rejected": 0},
    }
    assert json.loads((tmp_path / "bank" / "provenance.json").read_text())["stats"] == bank.stats


def test_ridge_fit_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    w = rng.normal(size=(5, 3))
    weights = fit_ridge(x, x @ w + 0.5, alpha=1e-6)
    np.testing.assert_allclose(weights[:5], w, atol=1e-3)
    np.testing.assert_allclose(weights[5], 0.5, atol=1e-3)
    with pytest.raises(ValueError, match="matching rows"):
        fit_ridge(x, x[:10])


class NamedEncoder(HashingTextEncoder):
    def __init__(self):
        super().__init__(dim=8)
        self.name = "clip-text-stand-in"


def test_image_space_by_ridge_and_a_visual_encoder(catalogue, encoder, tmp_path):
    image = np.random.default_rng(1).normal(size=(len(catalogue), 6)).astype(np.float32)
    bank = build(catalogue, tmp_path / "bank", encoder, image_features=image, visual_encoder=NamedEncoder())
    assert bank.spaces == ("image", "text", "visual")
    assert bank.settings["spaces"]["image"]["map"].startswith("ridge")
    assert bank.settings["spaces"]["visual"]["encoder"] == "clip-text-stand-in"
    weights = np.load(tmp_path / "bank" / "image_projection.npy")
    assert weights.shape == (17, 6)
    entry = bank.items()[0]
    expected = np.append(encoder.encode([entry.visual_description])[0], 1.0) @ weights
    np.testing.assert_allclose(bank.positive_features("image")[entry.item], expected, rtol=1e-5, atol=1e-6)
    assert bank.features("visual")[entry.item].shape == (4, 8)
    with pytest.raises(ValueError, match="image_features has 2 rows"):
        build(catalogue, tmp_path / "other", encoder, image_features=image[:2])


class RecordingEncoder(HashingTextEncoder):
    def __init__(self):
        super().__init__(dim=16)
        self.calls = []

    def encode(self, texts, show_progress=False):
        self.calls.append(list(texts))
        return super().encode(texts, show_progress=False)


def test_each_distinct_text_is_encoded_once_per_batch(catalogue, tmp_path):
    recorder = RecordingEncoder()
    bank = build(catalogue, tmp_path / "bank", recorder, batch_size=len(catalogue))
    assert all(len(call) == len(set(call)) for call in recorder.calls)
    text_call = recorder.calls[0]
    assert len(text_call) < bank.n_rows  # visual-only variants reuse their positive's text
    feats, pos = bank.features("text"), bank.positive_features("text")
    for entry in bank.items():
        for v, row in zip(entry.variants, feats[entry.item]):
            if v.modality == "visual":
                np.testing.assert_array_equal(row, pos[entry.item])
