"""heimdall-synth tooling: the ``heimdall-synth`` CLI, export, plots, validate/repair,
maintenance, the training loader, the demo and throwaway local services.

Built on the ``worker`` package (what a worker container runs), never imported by it.
For training code::

    from heimdall_synth import HeimdallDataset

(imported on first use, so ``import heimdall_synth`` stays light).
"""

from __future__ import annotations

from typing import Any

from worker import __version__

__all__ = ["FEATURE_NAMES", "HeimdallDataset", "IQIntegrityError", "__version__"]

_FROM_TRAINING = ("FEATURE_NAMES", "HeimdallDataset")


def __getattr__(name: str) -> Any:
    if name in _FROM_TRAINING:
        from . import training

        return getattr(training, name)
    if name == "IQIntegrityError":
        from .reader import IQIntegrityError

        return IQIntegrityError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
