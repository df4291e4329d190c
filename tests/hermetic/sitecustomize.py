"""A loopback-only guard for every Python process started with ``PYTHONPATH=tests/hermetic``.

Python imports ``sitecustomize`` at start-up, before the program runs. When
``EGRESS_HERMETIC_VIOLATIONS`` names a file, this installs an audit hook (PEP 578) that refuses,
by raising inside the hook, any socket operation aimed beyond this machine's loopback:

* ``socket.connect``/``connect_ex``, ``socket.bind``, ``socket.sendto``, ``socket.sendmsg`` to
  an address outside 127.0.0.0/8 and ::1 (IPv4-mapped loopback counts as loopback; ``""``,
  ``0.0.0.0`` and ``::`` do not: a wildcard bind listens on every interface). AF_UNIX paths and
  other non-IP families (netlink) pass.
* Name lookups (``getaddrinfo``, ``gethostbyname[_ex]``, ``gethostbyaddr``, ``getnameinfo``) of
  anything but IP literals and ``localhost`` (where /etc/hosts maps it). A lookup is a leak:
  libc sends the DNS query to the resolver of /etc/resolv.conf from C, where no audit hook sees
  it, so the guard refuses the lookup rather than waiting for a connect that may never be
  Python's.

The hook runs before the system call (CPython audits ``socket.connect`` after parsing the
address and before ``connect(2)``), so a refused connect sends no packet. One gap: a Python
``sock.connect(("name", port))`` resolves the name while parsing the address, before the audit
event; the connect is still refused and recorded, but that DNS query has left. Libraries
(urllib3, ``socket.create_connection``, asyncio) call ``getaddrinfo`` first, which is refused.

Each refusal appends one JSON line to the violations file. ``EGRESS_HERMETIC_LOG``, when set,
gets one ``loaded`` line per process (pid, argv), one ``exec`` line per program a process starts
(argv and the proxy variables of its environment) and one ``socket`` line per operation and
host a process was allowed (the first time only), so that a test can prove the guard was live
in every Python process, see how the sandbox's pods (curl) were started and which addresses
their traffic went to. Sockets that
C libraries open (libzmq, for the Jupyter kernels' channels) are beyond an audit hook: for a
kernel the guard checks instead that its connection file names a loopback ``ip``.

Outside such a test (the variable unset) this module does nothing.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import traceback
from collections.abc import Mapping
from typing import Any

VIOLATIONS_ENV = "EGRESS_HERMETIC_VIOLATIONS"
LOG_ENV = "EGRESS_HERMETIC_LOG"
REFUSED = "hermetic guard refused"


def _hosts_names(path: str = "/etc/hosts") -> frozenset[str]:
    """Names /etc/hosts maps to a loopback address: libc answers them without a query."""
    names: set[str] = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                words = line.partition("#")[0].split()
                if len(words) > 1 and words[0].startswith(("127.", "::1")):
                    names.update(w.lower() for w in words[1:])
    except OSError:
        pass
    return frozenset(n for n in names if n.rstrip(".") in ("localhost", "localhost.localdomain"))


# `localhost` passes only where /etc/hosts answers it; elsewhere it would be a DNS query.
LOOPBACK_NAMES = _hosts_names()
_SOCKET_SENDS = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"})
_LOOKUPS = frozenset(
    {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"}
)
_EXECS = frozenset({"subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn"})
_WATCHED = _SOCKET_SENDS | _LOOKUPS | _EXECS
_PROXY_VARS = ("ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy")


class HermeticViolation(PermissionError):
    """A socket operation beyond loopback, refused before the system call."""


class HermeticLookupRefused(socket.gaierror):
    """A name lookup that would send a DNS query, refused before libc is asked."""


def is_loopback_host(host: object) -> bool:
    """True for a loopback IP literal (127.0.0.0/8, ::1, ::ffff:127.x) or ``localhost``."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str) or not host:
        return False
    if host.lower() in LOOPBACK_NAMES or host.lower().rstrip(".") in LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_ip_literal(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


def socket_problem(address: object) -> str:
    """Why an address given to connect/bind/sendto leaves loopback; '' when it does not."""
    if not isinstance(address, tuple) or not address:
        return ""  # AF_UNIX path (str/bytes), or a connected socket's sendmsg (None)
    host = address[0]
    if not isinstance(host, (str, bytes)):
        return ""  # netlink and alike: (pid, groups)
    if is_loopback_host(host):
        return ""
    if is_ip_literal(host) or host in ("", b"", "<broadcast>"):
        return "an address outside loopback"
    return "a name that needs DNS"


def lookup_problem(event: str, args: tuple[Any, ...]) -> str:
    """Why a name lookup would leave this machine; '' when it would not."""
    if event == "socket.getaddrinfo":
        host = args[0]
        if host is None or host in ("", b"") or is_ip_literal(host) or is_loopback_host(host):
            return ""  # passive or numeric: answered without a query
        return "a DNS query"
    if event == "socket.gethostbyname":
        host = args[0]
        return "" if is_ip_literal(host) or is_loopback_host(host) else "a DNS query"
    if event == "socket.gethostbyaddr":
        return "" if is_loopback_host(args[0]) else "a reverse DNS query"
    # getnameinfo: the event carries the sockaddr only, not the flags, so NI_NUMERICHOST
    # cannot be told apart: any host but loopback counts as a reverse query.
    sockaddr = args[0]
    host = sockaddr[0] if isinstance(sockaddr, tuple) and sockaddr else None
    return "" if is_loopback_host(host) else "a reverse DNS query"


def _cmdline() -> list[str]:
    # sys.argv is not set yet while site imports this module.
    try:
        with open("/proc/self/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return list(getattr(sys, "argv", []))
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _append(path: str | None, record: Mapping[str, object]) -> None:
    if not path:
        return
    line = (json.dumps(record, default=str) + "\n").encode()
    # One write on an O_APPEND descriptor: lines of concurrent threads and processes interleave
    # whole.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _short(value: object, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _exec_record(event: str, args: tuple[Any, ...]) -> dict[str, object]:
    if event == "subprocess.Popen":
        executable, argv, env = args[0], args[1], args[3]
    else:  # os.exec, os.posix_spawn, os.spawn: (path, argv, env[, ...])
        executable, argv, env = args[0], args[1], args[2]
    if isinstance(argv, (str, bytes, os.PathLike)):
        argv = [argv]
    proxies: dict[str, str] | None = None
    if isinstance(env, Mapping):
        proxies = {}
        for key, value in env.items():
            name = os.fsdecode(key)
            if name in _PROXY_VARS:
                proxies[name] = os.fsdecode(value)
    return {
        "kind": "exec",
        "event": event,
        "pid": os.getpid(),
        "executable": os.fsdecode(executable) if executable is not None else None,
        "argv": [os.fsdecode(a) for a in argv],
        # None: the child inherits this process's environment (and so the guard).
        "env_proxies": proxies,
    }


def _check_kernel_channels(violations: str, log: str | None) -> None:
    """A Jupyter kernel's ZMQ channels (libzmq, no audit hook) must be on loopback."""
    argv = _cmdline()
    if "ipykernel_launcher" not in argv or "-f" not in argv:
        return
    path = argv[argv.index("-f") + 1]
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError, IndexError):
        return
    transport, ip = info.get("transport", "tcp"), info.get("ip", "")
    _append(log, {"kind": "kernel", "pid": os.getpid(), "transport": transport, "ip": ip})
    if transport == "tcp" and not is_loopback_host(ip):
        _append(
            violations,
            {"pid": os.getpid(), "argv": argv, "event": "zmq", "address": ip, "why": "kernel ip"},
        )


def install(violations: str, log: str | None) -> None:
    """Add the audit hook; record that this process has it."""
    argv = _cmdline()

    def refuse(event: str, address: object, why: str) -> None:
        _append(
            violations,
            {
                "pid": os.getpid(),
                "argv": argv,
                "event": event,
                "address": _short(address),
                "why": why,
                "stack": traceback.format_stack(limit=12)[:-2],
            },
        )

    seen: set[tuple[str, str]] = set()

    def allowed(event: str, address: object) -> None:
        # Once per event and host: evidence of what the process did reach, in few lines.
        if isinstance(address, tuple) and address:
            host = os.fsdecode(address[0]) if isinstance(address[0], (str, bytes)) else "other"
        else:
            host = "unix" if isinstance(address, (str, bytes)) else "other"
        if (event, host) not in seen:
            seen.add((event, host))
            _append(log, {"kind": "socket", "pid": os.getpid(), "event": event, "host": host})

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in _WATCHED:
            return
        if event in _SOCKET_SENDS:
            why = socket_problem(args[1])
            if why:
                refuse(event, args[1], why)
                raise HermeticViolation(f"{REFUSED} {event} to {_short(args[1])}: {why}")
            if log:
                allowed(event, args[1])
        elif event in _LOOKUPS:
            why = lookup_problem(event, args)
            if why:
                refuse(event, args[0], why)
                raise HermeticLookupRefused(
                    socket.EAI_NONAME, f"{REFUSED} {event} of {_short(args[0])}: {why}"
                )
        elif log:
            _append(log, _exec_record(event, args))

    sys.addaudithook(hook)
    _append(log, {"kind": "loaded", "pid": os.getpid(), "ppid": os.getppid(), "argv": argv})
    _check_kernel_channels(violations, log)


_violations = os.environ.get(VIOLATIONS_ENV)
if _violations:
    install(_violations, os.environ.get(LOG_ENV))
