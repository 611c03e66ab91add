"""Trust profile of a trained recognizer (TrustSER's axes plus calibration).

Each axis is a function of its own: ``fairness``, ``privacy`` and ``calibration`` take
NumPy arrays and return numbers; ``safety`` and ``sustainability`` take a logits function
(list of raw waveforms -> logits). ``run_trust`` evaluates a checkpoint end to end.
"""

from .calibration import calibration
from .fairness import fairness
from .privacy import privacy
from .profile import profile
from .safety import safety
from .sustainability import sustainability

__all__ = ["calibration", "fairness", "privacy", "profile", "safety", "sustainability"]
