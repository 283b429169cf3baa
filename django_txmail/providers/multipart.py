"""A ``multipart/form-data`` body streamed from its parts.

``requests`` builds multipart bodies in memory; a 25 MB upload would be
copied several times. This body knows its length up front (so it is sent
with ``Content-Length``, not chunked) and reads each file from its source
only while the socket asks for bytes.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import IO


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")


class MultipartBody(io.RawIOBase):
    """A readable, sized stream of form-data parts."""

    def __init__(self, boundary: str = "") -> None:
        super().__init__()
        self.boundary = boundary or f"txmail-{uuid.uuid4().hex}"
        self._pieces: list[tuple[int, Callable[[], IO[bytes]]]] = []
        self._length = 0
        self._current: IO[bytes] | None = None
        self._index = 0
        self._position = 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _add_bytes(self, data: bytes) -> None:
        self._pieces.append((len(data), lambda: io.BytesIO(data)))
        self._length += len(data)

    def add_part(
        self,
        name: str,
        content_type: str,
        *,
        data: bytes | None = None,
        opener: Callable[[], IO[bytes]] | None = None,
        size: int = 0,
        filename: str | None = None,
    ) -> None:
        disposition = f'form-data; name="{_quote(name)}"'
        if filename is not None:
            disposition += f'; filename="{_quote(filename)}"'
        head = (
            f"--{self.boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {content_type}\r\n\r\n"
        )
        self._add_bytes(head.encode("utf-8"))
        if data is not None:
            self._add_bytes(data)
        elif opener is not None:
            self._pieces.append((size, opener))
            self._length += size
        self._add_bytes(b"\r\n")

    def finish(self) -> MultipartBody:
        self._add_bytes(f"--{self.boundary}--\r\n".encode())
        return self

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        # requests asks for the position to work out how much is left to send.
        return self._position

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while self._index < len(self._pieces):
            if self._current is None:
                self._current = self._pieces[self._index][1]()
            data = self._current.read(len(view))
            if data:
                view[: len(data)] = data
                self._position += len(data)
                return len(data)
            self._current.close()
            self._current = None
            self._index += 1
        return 0

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()
