"""What sandbox up/down report while they work, and a progress that shows nothing."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What up/down report while they work (the CLI shows it with rich on a TTY, plain lines otherwise)."""

    def step(self, message: str) -> None: ...

    def start(self, label: str, total: int) -> None: ...

    def advance(self, label: str) -> None: ...


class NullProgress:
    def step(self, message: str) -> None:
        pass

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, label: str) -> None:
        pass
