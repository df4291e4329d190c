"""PageNumber/PageSize paging of Describe* results, with each action's default and maximum.

[UNCONFIRMED] A PageSize above the action's maximum (or below 1), or a PageNumber below 1, is
rejected with 400 InvalidParameter rather than clamped: the emulator is never kinder than the
real API, and a client that relies on clamping should find out here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common.params import Params

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    number: int
    size: int


def page_request(params: Params, *, default: int = 10, maximum: int = 50) -> PageRequest:
    """The validated PageNumber/PageSize of a request (call before DryRun, as it is validation)."""
    number = params.int("PageNumber", 1)
    size = params.int("PageSize", default)
    assert number is not None and size is not None
    if number < 1:
        raise errors.InvalidParameter("The specified parameter PageNumber is not valid.")
    if size < 1 or size > maximum:
        raise errors.InvalidParameter(
            f"The specified parameter PageSize is not valid (1 to {maximum})."
        )
    return PageRequest(number, size)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page_number: int
    page_size: int
    total_count: int

    def envelope(self) -> dict[str, int]:
        """The ``TotalCount``/``PageNumber``/``PageSize`` fields every paged response echoes."""
        return {
            "TotalCount": self.total_count,
            "PageNumber": self.page_number,
            "PageSize": self.page_size,
        }


def paginate(items: Sequence[T], page: PageRequest) -> Page[T]:
    start = (page.number - 1) * page.size
    return Page(list(items[start : start + page.size]), page.number, page.size, len(items))
