import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recbole_neggen.encoders import (TEXT_ENCODERS, HashingTextEncoder, ImageEncoder, PixelStatsImageEncoder,
                                     TextEncoder, clean_text, encode_resumable, item_text, minilm_dir,
                                     parse_categories)


def test_clean_text_unescapes_and_strips_tags():
    assert clean_text("Baby Tracker&reg; <b>Log</b>&amp;amp; more\n  text") == "Baby Tracker® Log & more text"
    assert clean_text(None) == ""


def test_parse_categories_variants():
    assert parse_categories("[['Baby', 'Diapering'], ['Other']]") == ["Baby", "Diapering"]
    assert parse_categories([["Baby", "Toys"]]) == ["Baby", "Toys"]
    assert parse_categories(["Baby", "Toys"]) == ["Baby", "Toys"]
    assert parse_categories("") == []
    assert parse_categories("not [ a literal") == ["not [ a literal"]


def test_item_text_recipe_and_missing():
    rec = {"title": "Cup &amp; lid", "brand": "Acme", "categories": "[['Baby', 'Feeding']]", "description": "A cup."}
    assert item_text(rec) == "Cup & lid Acme Baby Feeding A cup."
    assert item_text({"title": "", "description": "", "brand": "Acme", "categories": "[['Baby']]"}) is None
    assert item_text({"title": "Only title"}) == "Only title"


def test_hashing_encoder_deterministic_and_normalised():
    enc = HashingTextEncoder(dim=64)
    a = enc.encode(["red cotton bottle", "red cotton bottle", "blue wooden crib", ""], show_progress=False)
    assert a.shape == (4, 64) and a.dtype == np.float32
    assert np.array_equal(a[0], a[1])
    assert np.allclose(np.linalg.norm(a[:3], axis=1), 1.0) and not a[3].any()
    assert TEXT_ENCODERS.get("hashing") is HashingTextEncoder


def _solid(colour, size=20):
    return Image.new("RGB", (size, size), colour)


def test_pixel_stats_default_encoder(tmp_path):
    path = tmp_path / "red.png"
    _solid((255, 0, 0)).save(path)
    enc = ImageEncoder(None)
    assert isinstance(enc, PixelStatsImageEncoder)
    feat = enc.encode([path, _solid((255, 0, 0)), _solid((0, 0, 255))], show_progress=False)
    assert feat.shape == (3, 72) and feat.dtype == np.float32
    assert np.allclose(feat[0], feat[1])
    hist = feat[0, :24].reshape(3, 8)
    assert hist[0, 7] == 1.0 and hist[1, 0] == 1.0 and hist[2, 0] == 1.0  # all red pixels in the top bin
    assert np.allclose(feat[0, 24:].reshape(4, 4, 3), [1.0, 0.0, 0.0])
    assert not np.allclose(feat[0], feat[2])


def _tiny_vit(path: Path) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=24)
    ViTModel(cfg).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def _tiny_clip(path: Path) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    small = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24)
    cfg = CLIPConfig(text_config=dict(small, vocab_size=50), vision_config=dict(small, image_size=32, patch_size=8),
                     projection_dim=12)
    CLIPModel(cfg).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.mark.parametrize("builder,dim", [(_tiny_vit, 16), (_tiny_clip, 12)])
def test_hf_image_encoders_from_local_random_weights(tmp_path, builder, dim):
    model_dir = builder(tmp_path / "model")
    enc = ImageEncoder({"path": str(model_dir), "batch_size": 2})
    images = [_solid((255, 0, 0)), _solid((0, 255, 0)), _solid((0, 0, 255))]
    feat = enc.encode(images, show_progress=False)
    assert feat.shape == (3, dim) and feat.dtype == np.float32 and np.isfinite(feat).all()
    single = enc.encode(images[2:], show_progress=False)
    assert np.allclose(single[0], feat[2], atol=1e-5)  # batching does not change a row
    assert not np.allclose(feat[0], feat[1])


def test_image_encoder_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        ImageEncoder(tmp_path / "nope")
    with pytest.raises(ValueError, match="'path'"):
        ImageEncoder({"batch_size": 3})


def test_minilm_matches_sentence_transformers_and_is_order_invariant():
    from sentence_transformers import SentenceTransformer

    texts = ["Soft cotton baby blanket", "Red plastic feeding bottle with lid, BPA free",
             "A cot", "Cotton blanket, soft, for babies"]
    enc = TextEncoder(batch_size=2, dtype="float32")
    feat = enc.encode(texts, show_progress=False)
    assert feat.shape == (4, 384) and feat.dtype == np.float32
    assert np.allclose(np.linalg.norm(feat, axis=1), 1.0, atol=1e-5)
    ref = SentenceTransformer(str(minilm_dir()), device="cpu").encode(texts)
    assert np.allclose(feat, ref, atol=1e-4)
    sims = feat @ feat.T
    assert sims[0, 3] > sims[0, 1] and sims[0, 3] > sims[0, 2]
    fast = TextEncoder(dtype="bfloat16")
    assert fast.name == "all-MiniLM-L6-v2@bfloat16"
    assert ((fast.encode(texts, show_progress=False) * feat).sum(1) > 0.9999).all()
    assert TEXT_ENCODERS.get("minilm-fp32")().name == "all-MiniLM-L6-v2"


class _Flaky:
    """Encoder that fails on its n-th call (to simulate a killed run)."""

    def __init__(self, fail_on: int | None) -> None:
        self.calls, self.fail_on = 0, fail_on

    def __call__(self, chunk):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        return np.array([[float(x), 2.0 * x] for x in chunk], dtype=np.float32)


def test_encode_resumable_continues_after_interruption(tmp_path):
    inputs = list(range(10))
    work = tmp_path / "work"
    with pytest.raises(KeyboardInterrupt):
        encode_resumable(_Flaky(fail_on=3), inputs, work, key="k1", chunk_size=3)
    assert len(list(work.glob("chunk_*.npy"))) == 2
    again = _Flaky(fail_on=None)
    out = encode_resumable(again, inputs, work, key="k1", chunk_size=3)
    assert again.calls == 2  # chunks 3 and 4 only
    assert np.array_equal(out[:, 0], np.arange(10))
    fresh = _Flaky(fail_on=None)
    encode_resumable(fresh, inputs, work, key="other", chunk_size=3)
    assert fresh.calls == 4  # another key never reuses chunks
    assert json.loads((work / "key.json").read_text())["key"] == "other"
