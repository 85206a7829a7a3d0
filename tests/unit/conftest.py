"""Fixtures for the RF unit tests.

``default_config_dict`` is ``heimdall.normalize_config('{}')`` read from the real database
(the single home of defaults): the root conftest's ``default_config`` fixture. The kernel
tests themselves take explicit parameters and need no database.
"""

from __future__ import annotations

import copy

import pytest


@pytest.fixture(scope="session")
def default_config_dict(default_config: dict) -> dict:
    """The normalized default config. Session-scoped: treat as read-only (deep-copy it, e.g.
    with :func:`config_with`, before changing keys)."""
    return copy.deepcopy(default_config)


def config_with(base: dict, **overrides) -> dict:
    """Deep copy of a normalized config dict with some keys replaced."""
    d = copy.deepcopy(base)
    d.update(copy.deepcopy(overrides))
    return d
