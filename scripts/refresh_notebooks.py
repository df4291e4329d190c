"""Re-execute the committed notebooks in place against a fresh sandbox (``make notebooks``).

The stored outputs are what nbval compares against, so they must come from the same kind of
sandbox nbval uses: a fresh one on 127.18.0.0/16 with fast transitions (notebooks/conftest.py).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def main() -> int:
    from egress_sandbox.sandbox import Sandbox
    from egress_sandbox.topology import Topology

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(var, None)
    os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    os.environ["EGRESS_WIDGETS"] = "0"  # the stored outputs hold no widget state
    home = Path(tempfile.mkdtemp(prefix="refresh-sandbox-"))
    with Sandbox(home, Topology.loopback(18)):
        os.environ["EGRESS_SANDBOX_HOME"] = str(home)
        for path in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            print(f"executing {path.relative_to(REPO)}", flush=True)
            NotebookClient(
                nb,
                timeout=600,
                kernel_name="python3",
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                resources={"metadata": {"path": str(NOTEBOOKS)}},
            ).execute()
            for cell in nb.cells:
                cell.metadata.pop("execution", None)  # wall-clock stamps only make diffs noisy
            nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
