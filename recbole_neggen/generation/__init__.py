"""NegGen generation: item records -> three prompt templates x a backend -> validated, balanced generated
negatives -> an append-only, resumable :class:`NegativeBank` with encoded features and provenance."""
from recbole_neggen.generation.backends import BACKENDS, AttributeBackend, Backend, OpenAIBackend, TransformersBackend
from recbole_neggen.generation.bank import AlignedNegatives, BankEntry, NegativeBank, Variant
from recbole_neggen.generation.pipeline import generate_bank, main
from recbole_neggen.generation.records import ItemRecord, load_items
from recbole_neggen.generation.report import write_report
from recbole_neggen.generation.templates import TAGS, TEMPLATE_VERSION, Templates

__all__ = ["BACKENDS", "AttributeBackend", "Backend", "OpenAIBackend", "TransformersBackend", "AlignedNegatives",
           "BankEntry", "NegativeBank", "Variant", "generate_bank", "main", "ItemRecord", "load_items",
           "write_report", "TAGS", "TEMPLATE_VERSION", "Templates"]
