"""`python -m shared`: see shared/cli/main.py."""

import sys

from shared.cli.main import main

sys.exit(main())
