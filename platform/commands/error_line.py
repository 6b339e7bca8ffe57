"""An error as the one line the CLI prints (and the Python API raises): the message of bad input,
``the run failed: ...`` otherwise, whichever process raised it under Ray's wrappers."""

from __future__ import annotations

from sddarts.search_spaces.errors import SddartsError, UserError


def error_line(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one line for an error: 2 and its message for bad input (whichever
    process raised it), 1 and ``the run failed: ...`` otherwise."""
    cause = root_cause(exc)
    if isinstance(cause, UserError):
        return 2, str(cause)
    detail = " ".join(f"{type(cause).__name__}: {cause}".split())
    return 1, (f"the run failed: {detail[:600]} (the MLflow run holds the error; "
               "SDDARTS_DEBUG=1 shows the traceback)")


def root_cause(exc: BaseException) -> BaseException:
    """The exception a worker, a Train controller or a Tune trial raised, under Ray's wrappers."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, SddartsError):
            return exc
        failures = getattr(exc, "worker_failures", None)
        inner = (next(iter(failures.values()), None) if failures else None) or getattr(exc, "controller_failure", None) \
            or getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            return exc
        exc = inner
    return exc
