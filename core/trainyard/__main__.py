"""``python -m trainyard`` is the ``trainyard`` command."""

import sys

from trainyard.cli import main

sys.exit(main())
