"""The epoch loop every estimator's ``fit`` runs (docs/design.md, "Layers").

One place for what surrounds the epochs, so each ``fit`` only says what an
epoch does and what it records: the row order of each epoch (from the
estimator's seed words, spawn key ``SPAWN_SHUFFLE``), the epoch's wall time,
the ``history_`` entry, the progress display (a tqdm bar, else printed
lines: every epoch's, or about LINES_AT_MOST of a long fit), the callbacks,
early stopping and Ctrl-C (an interrupt ends the loop after the epoch in
progress).
"""
import sys
import time

import numpy as np

from ._random import SPAWN_SHUFFLE, spawn_rng

# printed progress (no tqdm): a fit of more epochs prints every k-th epoch's
# line, k = ceil(n_epochs / LINES_AT_MOST), and its first and last, so that
# a small data set raised to thousands of epochs (min_updates) does not
# print thousands of lines
LINES_AT_MOST = 100


class EarlyStopping:
    """Stop when a monitored value has not improved for ``patience`` epochs.

    Parameters
    ----------
    larger_is_better : bool
        Whether larger values are improvements.
    tol : float
        An improvement must exceed the best value so far by more than this.
    patience : int
        Epochs without improvement after which training stops.
    """

    def __init__(self, larger_is_better, tol, patience):
        self.larger_is_better = bool(larger_is_better)
        self.tol = float(tol)
        self.patience = int(patience)
        self.best = None
        self.waited = 0

    def update(self, value):
        """Record an epoch's value; returns 'improved', 'wait' or 'stop'.

        Parameters
        ----------
        value : float or None
            The epoch's value (None: not measured this epoch, no change).

        Returns
        -------
        str or None
            None when ``value`` is None.
        """
        if value is None:
            return None
        if self.best is None:
            improved = True
        else:
            gain = value - self.best if self.larger_is_better else self.best - value
            improved = gain > self.tol
        if improved:
            self.best, self.waited = value, 0
            return "improved"
        self.waited += 1
        return "stop" if self.waited >= self.patience else "wait"


class FitLoop:
    """The epochs of one ``fit``: order, timing, history, display, stopping.

    Parameters
    ----------
    name : str
        The estimator's name, for the display.
    n_epochs : int
        Epochs to run at most.
    seed_words : ndarray of uint32
        The estimator's seed words (the row order of epoch e comes from spawn
        key (SPAWN_SHUFFLE, e)).
    rows : ndarray of intp
        The training rows (indices into the data).
    shuffle : bool
        Whether each epoch visits the rows in a fresh random order.
    verbose : int
        Display progress: a tqdm bar when ``progress_bar`` and tqdm is
        installed, else printed lines: one per epoch, or with more than
        ``LINES_AT_MOST`` epochs every k-th epoch's, k = ceil(n_epochs /
        LINES_AT_MOST), and the first and the last.
    progress_bar : bool, default=True
        Whether a tqdm bar may be used.
    callbacks : list of callables, default=()
        Called after every epoch as ``callback(model, entry)``; False stops.
    """

    def __init__(self, name, n_epochs, seed_words, rows, shuffle, verbose, *,
                 progress_bar=True, callbacks=()):
        self.name = name
        self.n_epochs = int(n_epochs)
        self.seed_words = seed_words
        self.rows = rows
        self.shuffle = bool(shuffle)
        self.verbose = verbose
        self.callbacks = list(callbacks)
        self.bar = self._progress_bar() if progress_bar else None
        self._start = None
        self._line_every = max(1, -(-self.n_epochs // LINES_AT_MOST))
        self._reported = 0
        self._held_line = None      # the last epoch's line, when not printed

    def _progress_bar(self):
        if not self.verbose:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=self.n_epochs, desc=self.name, unit="epoch", file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # the bar closes however the loop ends
        if self.bar is not None:
            self.bar.close()
        # a fit that stops between printed lines (early stopping, a
        # callback, Ctrl-C) still shows its last epoch
        if self._held_line is not None:
            print(self._held_line, flush=True)
            self._held_line = None
        return False

    def order(self, epoch):
        """The rows in the order epoch ``epoch`` visits them."""
        if not self.shuffle:
            return self.rows
        return self.rows[spawn_rng(self.seed_words, SPAWN_SHUFFLE, epoch).permutation(
            len(self.rows))]

    def epochs(self, interrupt, first_epoch=0):
        """Yield (epoch number, row order) until done or interrupted.

        Parameters
        ----------
        interrupt : _interrupt.Interrupt
            The Ctrl-C flag of the surrounding ``deferred_interrupt``: true
            ends the loop before the next epoch.
        first_epoch : int, default=0
            The number of the first epoch (a model's epochs so far).
        """
        for i in range(self.n_epochs):
            if interrupt:       # Ctrl-C during the last epoch: it is complete
                return
            self._start = time.perf_counter()
            epoch = first_epoch + i
            yield epoch, self.order(epoch)

    def seconds(self):
        """Wall time of the epoch in progress so far."""
        return time.perf_counter() - self._start

    def report(self, entry, line):
        """Show an epoch's ``history_`` entry: the bar's postfix, or ``line``."""
        if self.bar is not None:
            self.bar.update(1)
            # a NaN pseudo-likelihood is a real-valued model's (it has none;
            # the plain line leaves it out too), not a number to show
            self.bar.set_postfix({k: round(v, 4) for k, v in entry.items()
                                  if k not in ("epoch", "seconds")
                                  and not (k == "pseudo_likelihood" and v != v)},
                                 refresh=False)
        elif self.verbose:
            self._reported += 1
            if (self._reported == 1 or self._reported % self._line_every == 0
                    or self._reported == self.n_epochs):
                if self._reported == 1 and self._line_every > 1:
                    line += f" (then a line every {self._line_every} epochs of {self.n_epochs})"
                print(line, flush=True)
                self._held_line = None
            else:
                self._held_line = line

    def should_stop(self, model, entry, stopping=None, value=None):
        """Run the callbacks, then early stopping; set ``model.stop_reason_``.

        Parameters
        ----------
        model : estimator
            Passed to the callbacks; its ``stop_reason_`` is set on a stop.
        entry : dict
            The epoch's ``history_`` entry.
        stopping : EarlyStopping, optional
            The early-stopping rule, given the epoch's ``value``.
        value : float, optional
            The monitored value of this epoch.

        Returns
        -------
        bool
            Whether training stops after this epoch.
        """
        if any(callback(model, entry) is False for callback in self.callbacks):
            model.stop_reason_ = "callback"
            return True
        if stopping is not None and stopping.update(value) == "stop":
            model.stop_reason_ = "early_stopping"
            return True
        return False


def epoch_rows(n):
    """All ``n`` rows, in order, as the index array the kernels take."""
    return np.arange(n, dtype=np.intp)
