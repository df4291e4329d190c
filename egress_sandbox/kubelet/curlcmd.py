"""What a curl container would run: its argv checked so that the pod network is the only way out.

Accepted shapes: no command (the image's entrypoint is curl), ``["curl", ...]`` or an absolute
path ending in ``/curl``, and ``sh -c "<one curl invocation>"``. Options that would bypass or
replace the SOCKS proxy are refused; curl 7.88 accepts unambiguous prefixes of long options,
so any prefix of a refused name is refused too.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

SHELLS = ("sh", "bash", "ash", "dash")
# Long options (without the leading dashes) that would let curl leave other than through the
# pod network, or read options from a file we do not check.
REFUSED_LONG = (
    "noproxy",
    "proxy",
    "preproxy",
    "socks4",
    "socks4a",
    "socks5",
    "socks5-hostname",
    "socks5-gssapi",
    "socks5-gssapi-service",
    "socks5-gssapi-nec",
    "socks5-basic",
    "interface",
    "unix-socket",
    "abstract-unix-socket",
    "dns-servers",
    "dns-interface",
    "dns-ipv4-addr",
    "dns-ipv6-addr",
    "doh-url",
    "config",
)
REFUSED_SHORT = frozenset("xK")
# curl 7.88 short options that take a value.
SHORT_WITH_VALUE = frozenset("AbcCdDeEFHKmoPQrTtuUwxXyYz")
_SHELL_OPERATORS = frozenset(";&|<>()`$\n")


class CommandRefused(Exception):
    """The container cannot run this; ``exit_code`` and ``log`` are what the pod shows."""

    def __init__(self, exit_code: int, log: str) -> None:
        super().__init__(log)
        self.exit_code = exit_code
        self.log = log


@dataclass(frozen=True)
class CurlInvocation:
    args: list[str]  # curl's arguments, without the program name
    # --resolve given: curl must resolve names itself (socks5://) for it to apply; otherwise
    # the pod network resolves them (socks5h://), as the cluster's DNS would. --connect-to
    # needs no local resolution: curl hands its target to the proxy either way.
    resolves_locally: bool = False


def _local_resolve_option(arg: str) -> bool:
    """--resolve, also as --resolve=... or an unambiguous prefix (curl takes "--reso")."""
    if not arg.startswith("--") or len(arg) <= 2:
        return False
    word = arg[2:].split("=", 1)[0].lower()
    return word == "resolve" or (len(word) >= 4 and "resolve".startswith(word))


def _is_curl(prog: str) -> bool:
    return prog == "curl" or (prog.startswith("/") and prog.endswith("/curl"))


def _from_shell(script: str) -> list[str]:
    if any(ch in _SHELL_OPERATORS for ch in script):
        raise CommandRefused(
            127,
            "sandbox: sh -c may only run a single curl invocation (no ;, &&, |, redirections,"
            f" substitutions or variables); got: {script}\n",
        )
    try:
        words = shlex.split(script)
    except ValueError as exc:
        raise CommandRefused(2, f"sh: syntax error: {exc}\n") from exc
    if not words or not _is_curl(words[0]):
        prog = words[0] if words else ""
        raise CommandRefused(127, f"sh: {prog}: not found (the sandbox runs curl only)\n")
    return words[1:]


def _refused_option(arg: str) -> str | None:
    if arg.startswith("--") and len(arg) > 2:
        word = arg[2:].split("=", 1)[0].lower()
        word = word.removeprefix("no-")  # --no-<flag> negates a boolean flag
        for name in REFUSED_LONG:
            if name.startswith(word) or word == name:
                return f"--{name}"
        return None
    if arg.startswith("-") and len(arg) > 1 and not arg.startswith("--"):
        # A short-option cluster such as -sSx: letters up to the first one taking a value
        # (whose value may be glued on, as in -o/tmp/x).
        for letter in arg[1:]:
            if letter in REFUSED_SHORT:
                return f"-{letter}"
            if letter in SHORT_WITH_VALUE:
                break
    return None


def _takes_separate_value(arg: str) -> bool:
    """True for -H, -sSo and the like: the next argument is their value, not an option."""
    if not arg.startswith("-") or arg.startswith("--") or len(arg) < 2:
        return False
    for i, letter in enumerate(arg[1:], start=1):
        if letter in SHORT_WITH_VALUE:
            return i == len(arg) - 1
    return False


def parse(command: list[str] | None, args: list[str] | None) -> CurlInvocation:
    """The curl arguments a container runs, or ``CommandRefused``."""
    argv = [*(command or []), *(args or [])]
    if not command:
        argv = ["curl", *(args or [])]  # the curl images' entrypoint runs curl
    prog = argv[0]
    if _is_curl(prog):
        curl_args = argv[1:]
    elif prog.rsplit("/", 1)[-1] in SHELLS and len(argv) >= 3 and argv[1] == "-c":
        curl_args = _from_shell(argv[2])
    else:
        raise CommandRefused(
            127,
            f'exec: "{prog}": executable file not found in $PATH (the sandbox runs curl only)\n',
        )
    skip = False
    local = False
    for arg in curl_args:
        if skip:
            skip = False
            continue
        if arg == "--":
            break
        skip = _takes_separate_value(arg)
        local = local or _local_resolve_option(arg)
        bad = _refused_option(arg)
        if bad:
            raise CommandRefused(
                2,
                f"sandbox: curl option {arg!r} ({bad}) is not allowed: pods reach the network "
                "only through the pod network\n",
            )
    return CurlInvocation(curl_args, resolves_locally=local)
