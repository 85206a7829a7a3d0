"""``python -m worker``: one worker process, configured by environment variables only.

What a worker container runs (no argparse, no tooling): the settings are
``HEIMDALL_DATABASE_URL``, ``HEIMDALL_S3_*`` and ``HEIMDALL_WORKER_*`` (VT_S, MAX_READS,
POLL_S, UNTIL_IDLE, MAX_CHUNKS, ID; see ``worker.settings`` and the README). A missing or
malformed one is one line on stderr (``error: ...``) and exit code 1; arguments are refused
(exit 2). ``heimdall-synth worker run`` is the same worker with flags over the variables.
"""

from __future__ import annotations

import sys

import psycopg

from .errors import HeimdallError, printable, translate


def main(argv: list[str]) -> int:
    if argv:
        print(f"error: python -m worker takes no arguments (got {printable(' '.join(argv))}): set "
              "HEIMDALL_WORKER_* environment variables, or use `heimdall-synth worker run` with flags",
              file=sys.stderr)
        return 2
    from .runner import Settings, run_worker

    try:
        return run_worker(Settings.from_env())
    except (HeimdallError, psycopg.Error, OSError) as exc:
        err = translate(exc) if isinstance(exc, psycopg.Error) else exc
        print(f"error: {printable(str(err).strip())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
