"""``python -m heimdall_synth ...`` = ``heimdall-synth ...``."""

import sys

from heimdall_synth.cli import main

if __name__ == "__main__":
    sys.exit(main())
