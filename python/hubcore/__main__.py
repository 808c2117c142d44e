"""``python -m hubcore`` runs the command line."""

import sys

from hubcore.cli import main

sys.exit(main())
