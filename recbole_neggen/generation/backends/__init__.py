"""Generation backends behind one interface (:class:`Backend`), looked up by name in ``BACKENDS``:
``attribute`` (no LLM), ``transformers`` (local model), ``openai`` (OpenAI-compatible HTTP endpoint)."""
from recbole_neggen.generation.backends.base import BACKENDS, Backend, Reply, Request, Usage
from recbole_neggen.generation.backends.attribute import AttributeBackend
from recbole_neggen.generation.backends.openai_backend import OpenAIBackend
from recbole_neggen.generation.backends.transformers_backend import TransformersBackend

__all__ = ["BACKENDS", "Backend", "Reply", "Request", "Usage", "AttributeBackend", "OpenAIBackend",
           "TransformersBackend"]
