"""``transformers`` backend: a local model directory, model id or ``.gguf`` file, loaded on first use.

Image-text-to-text models (config type in transformers' image-text-to-text mapping) load through
AutoProcessor + AutoModelForImageTextToText and see the item image in the chat; other models load as
causal LMs (AutoTokenizer + AutoModelForCausalLM) and describe the look from the text. Prompts are
batched with left padding (sorted by length); on CUDA the weights are bf16 and placed by accelerate
(``device_map="auto"``). Greedy decoding by default; ``temperature > 0`` samples, seeded per batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from recbole_neggen.generation.backends.base import BACKENDS, Backend, Reply, Request


@BACKENDS.register("transformers")
class TransformersBackend(Backend):
    """Local Hugging Face model (offline when given a path)."""

    name = "transformers"

    def __init__(self, model: str, max_new_tokens: int = 512, temperature: float = 0.0, batch_size: int = 8,
                 device_map: str | None = None) -> None:
        super().__init__()
        self.model_ref = str(model)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.batch_size = batch_size
        self.device_map = device_map
        self._config: Any = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._processor: Any = None

    def settings(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_ref, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature}

    def _source(self) -> tuple[str, dict[str, str]]:
        """(directory or id, extra loading kwargs): a ``.gguf`` file loads from its folder by name."""
        path = Path(self.model_ref)
        if path.suffix == ".gguf":
            if not path.is_file():
                raise FileNotFoundError(f"GGUF model file not found: {path}")
            return str(path.parent), {"gguf_file": path.name}
        return self.model_ref, {}

    @property
    def sees_images(self) -> bool:  # type: ignore[override]
        """True for image-text-to-text models (reads only the config)."""
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

        return self.config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    @property
    def config(self) -> Any:
        """The model config, read once (parsing a GGUF header is slow; loading reuses it)."""
        if self._config is None:
            from transformers import AutoConfig

            source, extra = self._source()
            self._config = AutoConfig.from_pretrained(source, **extra)
        return self._config

    def load(self) -> None:
        """Load tokenizer/processor and weights (once)."""
        if self._model is not None:
            return
        import torch
        from transformers import (AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor,
                                  AutoTokenizer)

        source, extra = self._source()
        cuda = torch.cuda.is_available()
        kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if cuda else torch.float32, "config": self.config, **extra}
        if cuda or self.device_map:
            kwargs["device_map"] = self.device_map or "auto"
        if self.sees_images:
            self._processor = AutoProcessor.from_pretrained(source)
            self._tokenizer = self._processor.tokenizer
            self._model = AutoModelForImageTextToText.from_pretrained(source, **kwargs)
            template = getattr(self._processor, "chat_template", None)
        else:
            self._tokenizer = AutoTokenizer.from_pretrained(source, **extra)
            self._model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
            template = self._tokenizer.chat_template
        if not template:
            raise ValueError(f"{self.model_ref} has no chat template: use an instruct/chat model")
        self._tokenizer.padding_side = "left"
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self._model.eval()

    def _render(self, request: Request) -> tuple[str, Any]:
        """Chat prompt text and the PIL image (or None) of one request."""
        messages = [dict(m) for m in request.messages]
        if not self.sees_images:
            return self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), None
        from PIL import Image

        image = None
        turns = []
        for m in messages:
            content: list[dict[str, str]] = [{"type": "text", "text": m["content"]}]
            if request.image is not None and image is None and m["role"] == "user":
                with Image.open(request.image) as img:
                    image = img.convert("RGB")
                content.insert(0, {"type": "image"})
            turns.append({"role": m["role"], "content": content})
        return self._processor.apply_chat_template(turns, add_generation_prompt=True, tokenize=False), image

    def _answer(self, requests: Sequence[Request]) -> list[Reply]:
        import torch

        self.load()
        rendered = [self._render(r) for r in requests]
        # batches never mix prompts with and without an image; shorter prompts together (less padding)
        order = sorted(range(len(requests)), key=lambda i: (rendered[i][1] is None, len(rendered[i][0])))
        groups = [[i for i in order if (rendered[i][1] is None) == no_image] for no_image in (False, True)]
        replies: list[Reply] = [Reply(error="not generated")] * len(requests)
        stop = {self._tokenizer.pad_token_id, *self._eos_ids()}
        for group in groups:
            for start in range(0, len(group), self.batch_size):
                chunk = group[start : start + self.batch_size]
                texts = [rendered[i][0] for i in chunk]
                images = [rendered[i][1] for i in chunk if rendered[i][1] is not None]
                if self.sees_images:
                    enc = self._processor(text=texts, images=images or None, return_tensors="pt", padding=True)
                else:
                    enc = self._tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                enc = enc.to(self._model.device)
                options: dict[str, Any] = {"max_new_tokens": self.max_new_tokens,
                                           "pad_token_id": self._tokenizer.pad_token_id,
                                           "do_sample": self.temperature > 0}
                if self.temperature > 0:
                    options["temperature"] = self.temperature
                    torch.manual_seed(requests[chunk[0]].seed)
                with torch.inference_mode():
                    out = self._model.generate(**enc, **options)
                new = out[:, enc["input_ids"].shape[1]:].tolist()
                self.usage.prompt_tokens += int(enc["attention_mask"].sum())
                for row, i in enumerate(chunk):
                    ids = new[row]
                    ends = [j for j, t in enumerate(ids) if t in stop]
                    ids = ids[: ends[0] + 1] if ends else ids
                    self.usage.completion_tokens += len(ids)
                    replies[i] = Reply(text=self._tokenizer.decode(ids, skip_special_tokens=True))
        return replies

    def _eos_ids(self) -> set[int]:
        eos = getattr(self._model.generation_config, "eos_token_id", None)
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self._tokenizer.eos_token_id is not None:
            ids.add(self._tokenizer.eos_token_id)
        return ids
