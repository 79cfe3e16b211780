"""Field-addressed validation errors.

Every complaint about a manifest names the field path (`spec.analysis.stepWeight`) and says what
to do, so that `rollout validate`, the operator's status conditions and Events all speak the same
language.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class FieldError:
    """One problem with one field: `path` is dotted, list items as `metrics[2]`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ValidationError(ValueError):
    """A manifest that cannot be used; carries every problem found, not just the first."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = sorted(set(errors), key=lambda e: (e.path, e.message))
        super().__init__("; ".join(str(e) for e in self.errors))
