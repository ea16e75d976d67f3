"""A workspace's `create` and `delete` run as named steps.

Each step looks before it acts, so a run that stops at any step converges when re-run. The runner
checks the cancel token before and after every step, reports each step to the progress sink ("creating
VPC", "deleting VPC") and to optional hooks: tests use the hooks to make any step fail once, before it
runs or after it ran (the answer lost), and check that a re-run converges. Delete steps return what they
removed, so `delete` can say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from . import cancel

T = TypeVar("T")
Progress = Callable[[str], None]


class StepHooks(Protocol):
    def before(self, step: str) -> None: ...  # may raise: the step never ran

    def after(self, step: str) -> None: ...  # may raise: the step ran, its caller never heard


def _ignore(message: str) -> None:
    return None


class Steps:
    """Runs named steps in order; `done` lists those completed in this run, `removed` what delete
    steps removed ("VPC vpc-0abc")."""

    def __init__(
        self, progress: Progress | None = None, hooks: StepHooks | None = None, verb: str = "creating"
    ) -> None:
        self._progress = progress or _ignore
        self._hooks = hooks
        self.verb = verb
        self.done: list[str] = []
        self.removed: list[str] = []

    def __call__(self, name: str, action: Callable[[], T]) -> T:
        cancel.check()
        self._progress(f"{self.verb} {name}")
        if self._hooks is not None:
            self._hooks.before(name)
        result = action()
        if self._hooks is not None:
            self._hooks.after(name)
        self.done.append(name)
        cancel.check()
        return result

    def remove(self, name: str, action: Callable[[], Iterable[str] | None]) -> list[str]:
        """A delete step: `action` returns the ids it removed (nothing when all was already gone)."""
        removed = self(name, lambda: list(action() or ()))
        for ident in removed:
            self.removed.append(f"{name} {ident}")
            self._progress(f"removed {ident}")
        return removed
