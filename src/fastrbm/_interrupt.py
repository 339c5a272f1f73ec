"""Ctrl-C during training: finish the epoch in progress, then stop.

The training kernels run a whole epoch without the GIL (the GPU engine as a
run of kernel launches), so a KeyboardInterrupt raised wherever Python next
looks at signals could land between an epoch's update and its bookkeeping
(``n_updates_``, ``n_epochs_``, ``history_``), or, on the GPU, halfway through
the epoch.  Instead, every ``fit`` runs its epoch loop inside
:class:`deferred_interrupt`: the first SIGINT only sets a flag, the loop ends
the epoch in progress normally (parameters, counters and history agree), sees
the flag and stops.  A second SIGINT raises KeyboardInterrupt at once, for
when the user cannot wait for the epoch to end.

Nested fits (a DBN's layers, a DBNClassifier's pretraining) share one flag, so
an interrupt seen by a layer also stops the stack above it.  Only the main
thread receives signals, and only when the SIGINT handler is Python's default
one (or ours) is it taken over: in other threads, or under a handler someone
else installed, the flag stays unset and signals behave as they did.
"""
import signal
import threading

__all__ = ["deferred_interrupt"]


class _Pending:
    """Whether a SIGINT arrived while deferred (truthy), and how many."""

    def __init__(self):
        self.count = 0
        # set by the loop that stopped because of it (see deferred_interrupt)
        self.handled = False
        # active contexts sharing this flag; nested: a fit inside another one
        self.depth = 1

    @property
    def nested(self):
        """Whether an enclosing fit shares this flag (and reports the stop)."""
        return self.depth > 1

    def __bool__(self):
        return self.count > 0


# the flag of the outermost active deferral (main thread only), else None
_active = None


def _handler(signum, frame):
    _active.count += 1
    if _active.count > 1:
        raise KeyboardInterrupt


class deferred_interrupt:
    """Context manager: SIGINT sets a flag instead of raising (see module doc).

    ``with deferred_interrupt() as pending:`` gives the flag; ``bool(pending)``
    says whether Ctrl-C was pressed.  The loop that stops because of it sets
    ``pending.handled = True``; a press that no loop handled (e.g. after the
    last epoch) is raised as KeyboardInterrupt when the outermost context
    exits, so it is never lost.
    """

    def __enter__(self):
        global _active
        self._owner = False
        self._shared = None
        if threading.current_thread() is not threading.main_thread():
            return _Pending()
        current = signal.getsignal(signal.SIGINT)
        if current is _handler and _active is not None:
            self._shared = _active
            _active.depth += 1
            return _active
        if current is not signal.default_int_handler:
            return _Pending()
        self._previous = current
        self._owner = True
        _active = _Pending()
        signal.signal(signal.SIGINT, _handler)
        return _active

    def __exit__(self, exc_type, exc, tb):
        global _active
        if self._shared is not None:
            self._shared.depth -= 1
        if not self._owner:
            return False
        # the handler first: a signal in between must still find the flag
        signal.signal(signal.SIGINT, self._previous)
        pending, _active = _active, None
        if exc_type is None and pending and not pending.handled:
            raise KeyboardInterrupt
        return False
