"""Errors a user may see, each with its exit code.

Exit codes follow the Nagios plugin convention so `memdiag` can serve as a check:

    0  nothing above info          1  at least one warning
    2  at least one critical       3  memdiag could not run (bad arguments, unreadable input)
    4  a rule file is invalid      5+N  verdict N (0, 1, 2) but a sink could not deliver
                                       (the findings wait in the outbox)

Every error prints as one line naming the file and the problem; ``--debug`` adds the traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_UNKNOWN = 3
EXIT_INVALID_RULES = 4
EXIT_DELIVERY = 5


class MemdiagError(Exception):
    """A problem memdiag reports in one line and exits on."""

    exit_code = EXIT_UNKNOWN

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


class InputError(MemdiagError):
    """Evidence that cannot be read or understood (missing path, hostile archive, ...)."""


class UsageError(MemdiagError):
    """Bad command-line arguments or configuration."""


class RuleError(MemdiagError):
    """A rule file that does not validate."""

    exit_code = EXIT_INVALID_RULES


class DeliveryError(MemdiagError):
    """A sink could not deliver; the finding stays in the outbox."""

    exit_code = EXIT_DELIVERY
