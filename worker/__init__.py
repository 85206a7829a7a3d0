"""heimdall-synth's worker package: what a worker container runs (``python -m worker``).

The RF core (``rf/``), the worker loop (``runner``), its settings (``settings``, ``config``),
the object store (``storage``), the database boundary (``db``, named queries in
``queries.sql``), the rows it writes (``rows``) and the exceptions (``errors``). The user
tooling (CLI, export, plots, validate, training loader, demo) is the ``heimdall_synth``
package, which builds on this one and is never imported by it.
"""
__version__ = "0.1.0"
