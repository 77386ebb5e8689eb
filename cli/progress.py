"""A one-line progress report on stderr for long commands (generation, synthesis, benchmarks).

On a terminal the line redraws in place (``Synthesizing: 3/8 (38%) mac_10g 4.1s``); when stderr
is not a terminal (CI logs, pipes) only the start and finish lines are written, so logs stay
short. Set ``AMNIC_PROGRESS=0`` to silence the helper entirely, ``AMNIC_PROGRESS=1`` to force the
redrawing line. Benchmarks use it as::

    from amnic.cli.progress import progress

    with progress("Simulating", total=len(sizes)) as p:
        for size in sizes:
            p.advance(note=f"{size} B")
"""

import os
import sys
import time
from contextlib import contextmanager

__all__ = ["Progress", "progress"]


def _mode(stream):
    forced = os.environ.get("AMNIC_PROGRESS", "")
    if forced == "0":
        return "off"
    if forced == "1":
        return "live"
    isatty = getattr(stream, "isatty", None)
    return "live" if isatty is not None and isatty() else "quiet"


def _seconds(t):
    return f"{t:.1f}s" if t < 60 else f"{int(t // 60)}m{t % 60:04.1f}s"


class Progress:
    """Progress of one task of ``total`` steps (``None`` when the count is unknown).

    Parameters
    ----------
    label : str
        What is being done, e.g. ``"Synthesizing"``.
    total : int or None
        Number of steps, for the ``n/total (pct)`` display.
    stream : file, optional
        Where to write; ``sys.stderr`` (looked up at construction) by default.
    """

    #: Minimum time between two redraws of the live line, in seconds.
    REDRAW_INTERVAL = 0.1

    def __init__(self, label, total=None, stream=None):
        self.label = label
        self.total = total
        self.done = 0
        self.note = ""
        self.stream = sys.stderr if stream is None else stream
        self.mode = _mode(self.stream)
        self._start = None
        self._last_draw = 0.0
        self._width = 0

    @property
    def elapsed(self):
        """Seconds since :meth:`start` (0 before it)."""
        return 0.0 if self._start is None else time.monotonic() - self._start

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def _count(self):
        if self.total:
            return f"{self.done}/{self.total} ({100 * self.done // self.total}%)"
        return f"{self.done}" if self.done else ""

    def _line(self):
        parts = [f"{self.label}:", self._count(), self.note, _seconds(self.elapsed)]
        return " ".join(p for p in parts if p)

    def _draw(self, force=False):
        now = time.monotonic()
        if self.mode != "live" or (not force and now - self._last_draw < self.REDRAW_INTERVAL):
            return
        self._last_draw = now
        line = self._line()
        pad = max(0, self._width - len(line))
        self._width = len(line)
        self._write("\r" + line + " " * pad)

    def start(self):
        """Record the start time and write the start line."""
        self._start = time.monotonic()
        if self.mode == "quiet":
            plural = "" if self.total == 1 else "s"
            steps = f" ({self.total} step{plural})" if self.total else ""
            self._write(f"{self.label}...{steps}\n")
        self._draw(force=True)

    def advance(self, n=1, note=None):
        """Count ``n`` more steps done; ``note`` (if given) replaces the text after the count."""
        self.done += n
        if note is not None:
            self.note = note
        self._draw()

    def set_note(self, note):
        """Show ``note`` (e.g. the item being worked on) without counting a step."""
        self.note = note
        self._draw()

    def finish(self, failed=False):
        """Write the final line: the step count and elapsed time, or that the task failed."""
        if self.mode == "off":
            return
        status = "failed" if failed else "done"
        count = self._count()
        summary = f"{self.label}: {status}" + (f", {count}" if count else "")
        summary += f" in {_seconds(self.elapsed)}"
        if self.mode == "live":
            pad = max(0, self._width - len(summary))
            self._write("\r" + summary + " " * pad + "\n")
        else:
            self._write(summary + "\n")


@contextmanager
def progress(label, total=None, stream=None):
    """Report progress of the enclosed work; yields a :class:`Progress`.

    The finish line says ``failed`` when the block raises (the exception propagates).
    """
    p = Progress(label, total, stream)
    p.start()
    try:
        yield p
    except BaseException:
        p.finish(failed=True)
        raise
    p.finish()
