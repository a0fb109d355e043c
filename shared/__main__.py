"""`python -m shared`: see shared/cli.py."""

import sys

from .cli import main

sys.exit(main())
