"""A workspace's `create` and `delete` run as named steps.

Each step looks before it acts, so a run that stops at any step converges when re-run. The runner
reports each step to the progress sink and to optional hooks: tests use the hooks to make any step fail
once, before it runs or after it ran (the answer lost), and check that a re-run converges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")
Progress = Callable[[str], None]


class StepHooks(Protocol):
    def before(self, step: str) -> None: ...  # may raise: the step never ran

    def after(self, step: str) -> None: ...  # may raise: the step ran, its caller never heard


def _ignore(message: str) -> None:
    return None


class Steps:
    """Runs named steps in order; `done` lists those completed in this run."""

    def __init__(self, progress: Progress | None = None, hooks: StepHooks | None = None) -> None:
        self._progress = progress or _ignore
        self._hooks = hooks
        self.done: list[str] = []

    def __call__(self, name: str, action: Callable[[], T]) -> T:
        self._progress(name)
        if self._hooks is not None:
            self._hooks.before(name)
        result = action()
        if self._hooks is not None:
            self._hooks.after(name)
        self.done.append(name)
        return result
