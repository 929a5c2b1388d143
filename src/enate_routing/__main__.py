"""``python -m enate_routing``: the same as the ``enate-routing`` command."""

import sys

from enate_routing._cli import main

sys.exit(main())
