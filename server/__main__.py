"""``python -m metagpt_lsp.server`` — the same as the ``metagpt-lsp`` command."""

import sys

from .cli.main import main

sys.exit(main())
