"""``python -m egress_sandbox.cli``: what ``egress-sandbox up`` runs in the background."""

from __future__ import annotations

import sys

from egress_sandbox.cli import main

sys.exit(main())
