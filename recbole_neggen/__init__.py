"""recbole_neggen: NegGen (generated negatives for multi-modal recommendation) and negative-sampling baselines
as a RecBole 1.2.1 extension. Importing the package applies the compatibility shims in :mod:`.compat` first."""
from recbole_neggen import compat as _compat

_compat.apply()

__version__ = "0.1.0"
