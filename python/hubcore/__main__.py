"""``python -m hubcore`` runs the command line."""

import sys

from hubcore.cli import main

__all__: list[str] = []

sys.exit(main())
