"""Errors that tell the user which patient and file failed, and how to fix it."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input for one patient (or one file): names the patient, the file and the fix."""

    def __init__(self, problem: str, *, patient: str | None = None, path=None, fix: str = ""):
        self.problem = problem
        self.patient = patient
        self.path = None if path is None else str(path)
        self.fix = fix
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.patient is not None:
            where.append(f"patient {self.patient}")
        if self.path is not None:
            where.append(f"file {self.path}")
        text = f"{', '.join(where)}: {self.problem}" if where else self.problem
        return f"{text}. Fix: {self.fix}" if self.fix else text
