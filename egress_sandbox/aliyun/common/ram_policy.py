"""RAM as the cloud applies it: the RAM action of each API call, and identity policies.

The RAM action is ``<product>:<API action>`` except where an API's help page ("Authorization
information") names another one. A policy is the RAM JSON document (help:
https://www.alibabacloud.com/help/en/ram/policy-elements and document_detail/93739): Version
"1", Statement of Effect, Action or NotAction, Resource or NotResource, optional Condition; an
explicit Deny beats any Allow, and what no statement allows is an implicit deny.

Choices, each at least as strict as RAM: action names match case-sensitively with ``*`` (and
``?``) wildcards, although RAM mostly ignores case; resources and conditions are not
evaluated, so an Allow counts only with Resource ``"*"`` and no Condition, while every Deny
counts; a document with any other element (Sid, Principal, ...) is refused, like a
malformed policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator

# (product, API action) -> RAM action, where they differ.
RENAMED: dict[tuple[str, str], str] = {
    # https://www.alibabacloud.com/help/doc-detail/197434.htm
    ("cs", "DescribeClusterAddonsVersion"): "cs:Queryk8sComponentsUpdateVersion",
}

Decision = Literal["Allow", "ExplicitDeny", "ImplicitDeny"]
_STATEMENT_KEYS = {"Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}


def ram_action(product: str, action: str) -> str:
    """The RAM action that authorizes ``product``'s API ``action``."""
    return RENAMED.get((product, action), f"{product}:{action}")


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{what} must be a string or a non-empty list of strings")
    return tuple(items)


def _pattern(action: str) -> re.Pattern[str]:
    if action != "*" and action.count(":") != 1:
        raise ValueError(f"Action {action!r} is not <ram-code>:<action-name>")
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in action)
    )


@dataclass(frozen=True)
class Statement:
    effect: Literal["Allow", "Deny"]
    actions: tuple[re.Pattern[str], ...]
    negated: bool  # NotAction: every action but these
    unrestricted: bool  # Resource "*" and no Condition

    def covers(self, auth_action: str) -> bool:
        hit = any(p.fullmatch(auth_action) for p in self.actions)
        return hit != self.negated


@dataclass(frozen=True)
class RamPolicy:
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> RamPolicy:
        """Validate a policy document; ValueError names what is wrong."""
        if set(document) != {"Version", "Statement"} or document["Version"] != "1":
            raise ValueError('a RAM policy has exactly Version "1" and Statement')
        raw = document["Statement"]
        if not isinstance(raw, list) or not raw:
            raise ValueError("Statement must be a non-empty list")
        return cls(tuple(_statement(s) for s in raw))

    def decide(self, auth_action: str) -> Decision:
        covering = [s for s in self.statements if s.covers(auth_action)]
        if any(s.effect == "Deny" for s in covering):
            return "ExplicitDeny"
        if any(s.effect == "Allow" and s.unrestricted for s in covering):
            return "Allow"
        return "ImplicitDeny"


def _statement(raw: Any) -> Statement:
    if not isinstance(raw, dict) or "Effect" not in raw:
        raise ValueError("each Statement must be an object with an Effect")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise ValueError(f"unknown Statement element(s): {', '.join(sorted(unknown))}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise ValueError("Effect must be Allow or Deny")
    if ("Action" in raw) == ("NotAction" in raw):
        raise ValueError("a Statement has exactly one of Action and NotAction")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise ValueError("a Statement has exactly one of Resource and NotResource")
    negated = "NotAction" in raw
    actions = _strings(raw["NotAction" if negated else "Action"], "Action")
    resources = _strings(raw.get("Resource", raw.get("NotResource")), "Resource")
    unrestricted = "Resource" in raw and "*" in resources and "Condition" not in raw
    return Statement(effect, tuple(_pattern(a) for a in actions), negated, unrestricted)


def _valid_document(document: dict[str, Any]) -> dict[str, Any]:
    RamPolicy.parse(document)
    return document


# A policy document field of the topology: refused when it is not a valid policy.
PolicyDocument = Annotated[dict[str, Any], AfterValidator(_valid_document)]
