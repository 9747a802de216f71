"""`python -m personalization`: see personalization/cli.py."""

import sys

from personalization.cli import main

sys.exit(main())
