"""The sandbox's secrets: random per home, never drawn from the seed.

IDs come from the seeded IdFactory so that stored notebook outputs compare across runs. A
secret drawn from that published seed would be the same in every sandbox, so anyone could
sign as its admin; secrets come from ``secrets`` instead, and a home keeps its own in
``state.json`` (mode 0600).
"""

from __future__ import annotations

import secrets
import string

ALNUM = string.ascii_letters + string.digits

# Real AccessKey secrets are 30 letters and digits.
ACCESS_KEY_SECRET_LENGTH = 30


def random_secret(length: int = ACCESS_KEY_SECRET_LENGTH, alphabet: str = ALNUM) -> str:
    """A secret of ``length`` characters from ``alphabet``, from the OS's CSPRNG."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def bearer_token() -> str:
    """A Kubernetes bearer token: 40 hex digits, the shape the kubeconfig tokens always had."""
    return secrets.token_hex(20)
