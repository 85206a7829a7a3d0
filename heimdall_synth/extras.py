"""Optional dependencies (pyproject extras), imported only where they are used.

The core install is what a worker needs. The tooling's heavier libraries come with extras:
``plots`` (matplotlib), ``export`` (pyarrow, h5py, tqdm, sigmf), ``train`` (torch, for
DataLoader; HeimdallDataset itself does not need it), ``local`` (the SeaweedFS binary for
the demo). :func:`require` imports one of them and, when it is missing, raises
:class:`MissingExtra` whose one-line message names the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from worker.errors import HeimdallError

# module -> the extra that installs it
EXTRA_OF = {
    "matplotlib": "plots",
    "pyarrow": "export",
    "h5py": "export",
    "tqdm": "export",
    "sigmf": "export",
    "torch": "train",
}


class MissingExtra(HeimdallError):
    """An optional library is not installed; the message says which extra brings it."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs {module}, which is not installed: "
                         f"pip install 'heimdall-synth[{extra}]'")
        self.module, self.extra = module, extra


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. "matplotlib.figure"); MissingExtra when its top-level package
    is not installed. ``purpose`` starts the message ("plotting", "export --format hdf5").
    Any other import error (a broken installation) is raised as it is."""
    top = module.split(".")[0]
    try:
        importlib.import_module(top)           # the package first: a submodule may be cached
    except ImportError as exc:
        if exc.name not in (None, top):
            raise                               # the library is there but broken
        raise MissingExtra(top, EXTRA_OF[top], purpose) from exc
    return importlib.import_module(module)


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without raising)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
