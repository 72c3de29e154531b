"""Models registered by name with :data:`MODELS` (importing this package registers them all)."""
from recbole_neggen.registry import Registry

MODELS: Registry[type] = Registry("model")

from recbole_neggen.model import nsrec  # noqa: E402,F401  (registers NSRec)
from recbole_neggen.model import multimodal  # noqa: E402,F401  (registers the vbpr and freedom backbones)
from recbole_neggen.model import neggen  # noqa: E402,F401  (registers NegGen)
