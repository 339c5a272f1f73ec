"""``python -m fastrbm``: the same as the ``fastrbm`` command."""
import sys

from .cli import main

sys.exit(main())
