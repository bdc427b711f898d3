import os
import sys

from .cli import main

try:
    sys.exit(main())
except BrokenPipeError:  # e.g. `| head`: the reader left; say nothing more
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(1)
