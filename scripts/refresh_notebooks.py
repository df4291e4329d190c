"""Re-execute the committed notebooks in place against a fresh sandbox (``make notebooks``).

The stored outputs are what nbval compares against, so they must come from the same kind of
sandbox nbval uses: a fresh one on 127.18.0.0/16 with fast transitions (notebooks/conftest.py).

    python scripts/refresh_notebooks.py                            # every notebook
    python scripts/refresh_notebooks.py 07-egress-policies         # only these are written
    python scripts/refresh_notebooks.py --only 07-egress-policies  # only these run

Named notebooks are written; every notebook still runs, in order, so each one sees the
sandbox as nbval's run of all of them leaves it (``--only``: just the named ones run, for a
notebook that does not depend on the others' changes).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to write (stem); default: all")
    parser.add_argument("--only", action="store_true", help="run only the named notebooks")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    unknown = sorted(set(args.names) - {p.stem for p in paths})
    if unknown:
        parser.error(f"no notebook {', '.join(unknown)} in {NOTEBOOKS.relative_to(REPO)}")
    wanted = set(args.names) or {p.stem for p in paths}
    if args.only:
        paths = [p for p in paths if p.stem in wanted]

    from egress_sandbox.sandbox import Sandbox
    from egress_sandbox.topology import Topology

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(var, None)
    os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    os.environ["EGRESS_WIDGETS"] = "0"  # the stored outputs hold no widget state
    home = Path(tempfile.mkdtemp(prefix="refresh-sandbox-"))
    with Sandbox(home, Topology.loopback(18)):
        os.environ["EGRESS_SANDBOX_HOME"] = str(home)
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            keep = path.stem in wanted
            note = "" if keep else " (not written)"
            print(f"executing {path.relative_to(REPO)}{note}", flush=True)
            NotebookClient(
                nb,
                timeout=600,
                kernel_name="python3",
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                resources={"metadata": {"path": str(NOTEBOOKS)}},
            ).execute()
            if not keep:
                continue
            for cell in nb.cells:
                cell.metadata.pop("execution", None)  # wall-clock stamps only make diffs noisy
            nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
