"""Small helpers shared by the end-to-end tests."""

import socket
import threading
from typing import IO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readline_within(stream: IO[str], seconds: float, what: str) -> str:
    """The next line of a child's pipe, or a failure naming ``what`` after ``seconds``: a child that
    never writes fails its test instead of blocking the suite."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        raise AssertionError(f"no line from {what} within {seconds:.0f} s")
    return lines[0]
