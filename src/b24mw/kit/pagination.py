"""``page``/``page_size`` query parameters and the ``Paginated`` response shape."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")
# Deeper pages are refused (422), so ``page * page_size`` is a plain OFFSET on
# both engines; lists that deep are narrowed with filters (dates, status).
MAX_PAGE = 1_000_000


@dataclass(frozen=True, slots=True)
class PageParams:
    page: int = 1
    page_size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


async def _page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, le=100, description="items per page")] = 20,
) -> PageParams:
    return PageParams(page=page, page_size=page_size)


Pagination = Annotated[PageParams, Depends(_page_params)]


class Paginated(BaseModel, Generic[T]):
    items: list[T]
    page: int
    page_size: int
    total_items: int
    total_pages: int
    has_next: bool

    @classmethod
    def build(cls, items: Sequence[T], total: int, params: PageParams) -> Paginated[T]:
        pages = math.ceil(total / params.page_size) if total else 0
        return cls(
            items=list(items),
            page=params.page,
            page_size=params.page_size,
            total_items=total,
            total_pages=pages,
            has_next=params.page < pages,
        )
