"""Fixtures for the RF unit tests.

``default_config_dict`` is ``heimdall.normalize_config('{}')`` as committed in
``worker/default_config.json`` (an integration test keeps it equal to the database, the
single home of defaults), so unit tests run without PostgreSQL. The kernel tests themselves
take explicit parameters.
"""

from __future__ import annotations

import copy

import pytest

from worker.config import default_config_snapshot


@pytest.fixture(scope="session")
def default_config_dict() -> dict:
    """The normalized default config. Session-scoped: treat as read-only (deep-copy it, e.g.
    with :func:`config_with`, before changing keys)."""
    return default_config_snapshot()


@pytest.fixture(scope="session")
def legacy_config_dict() -> dict:
    """The default config as stored before revision 0002 (no "propagation"): the free-space
    path of generator 1.0.0, where strong links are the rule. Tests of synthesis and feature
    estimation use it for its predictable SNRs. Read-only, like ``default_config_dict``."""
    from tests.unit.golden_samples import legacy_config

    return legacy_config()


def config_with(base: dict, **overrides) -> dict:
    """Deep copy of a normalized config dict with some keys replaced."""
    d = copy.deepcopy(base)
    d.update(copy.deepcopy(overrides))
    return d


# The unit tier runs without services: a unit test that asks for the database or the
# object store fails at collection, naming the fixture (move it to tests/integration).
SERVICE_FIXTURES = {"pg_server", "postgresql", "postgresql_noproc", "conn", "db_url", "connect",
                    "s3_server", "store", "bucket", "spawn_worker"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/unit/" in str(item.fspath):
            used = SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
            if used:
                raise pytest.UsageError(f"{item.nodeid}: unit tests run without services, "
                                        f"but it uses {sorted(used)}")
