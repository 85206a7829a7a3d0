"""``python -m worker [worker options]`` = ``heimdall-synth worker run [options]``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["worker", "run", *sys.argv[1:]]))
