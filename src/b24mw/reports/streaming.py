"""A streamed answer whose source is closed however the stream ends.

The first chunk is produced before the answer starts: a database that is
down, or a workbook that cannot be built, still gets its problem answer
(503, ...) instead of a cut-off 200.  After that, a client that goes away
ends the stream, and the generator (its connection, its temporary files) is
closed at once instead of whenever the garbage collector finds it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class ClosingStreamingResponse(StreamingResponse):
    def __init__(
        self,
        source: AsyncGenerator[bytes, None],
        first: bytes,
        *,
        media_type: str,
        headers: Mapping[str, str],
    ) -> None:
        self.source = source
        super().__init__(self._chunks(first), media_type=media_type, headers=headers)

    async def _chunks(self, first: bytes) -> AsyncIterator[bytes]:
        yield first
        async for chunk in self.source:
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.source.aclose()


async def start_stream(
    source: AsyncGenerator[bytes, None], *, media_type: str, headers: Mapping[str, str]
) -> ClosingStreamingResponse:
    """The answer streaming ``source``, whose first chunk is already made."""
    try:
        first = await anext(source)
    except StopAsyncIteration:
        first = b""
    except BaseException:
        await source.aclose()
        raise
    return ClosingStreamingResponse(source, first, media_type=media_type, headers=headers)
