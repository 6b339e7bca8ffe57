"""Ray 2.60 Tune's answer to Ctrl-C, told apart from a sweep that ended by itself.

On the first SIGINT, ``tuner.fit()`` saves the experiment state and returns; the trials that were
running come back TERMINATED, like finished ones, so the results alone cannot tell an interrupted
sweep whose trials were all running from a finished one. Tune installs its own SIGINT handler for
the fit (in the main thread, unless ``TUNE_DISABLE_SIGINT_HANDLER`` is set) and puts back the
handler it found on the first Ctrl-C, and only then: a fit that ends by itself leaves Tune's in
place. ``fit_noting_interrupt`` installs a handler of its own before the fit and reads, after it,
whether Tune put that one back.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable


def fit_noting_interrupt(fit: Callable[[], Any]) -> tuple[Any, bool]:
    """``fit()``'s result, and whether Tune was interrupted (Ctrl-C) during it."""
    if threading.current_thread() is not threading.main_thread() or int(os.getenv("TUNE_DISABLE_SIGINT_HANDLER", "0")):
        return fit(), False  # Tune catches no signal here: a Ctrl-C raises KeyboardInterrupt as usual
    previous = signal.getsignal(signal.SIGINT)

    def before_the_fit(signum, frame):  # what was in place before, for a second Ctrl-C
        if previous is signal.SIG_IGN:
            return
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, before_the_fit)
    try:
        result = fit()
        interrupted = signal.getsignal(signal.SIGINT) is before_the_fit
    finally:
        signal.signal(signal.SIGINT, previous)
    return result, interrupted
