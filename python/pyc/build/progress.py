"""What `pyc build` shows as it goes (`--progress`):

- `plain`: each step on a line as it starts, a RUN's output as it comes, then `--> Using cache`
  or `--> Done` with the step's time.
- `tty` (what `auto` picks when standard output is a terminal): a display rich redraws, as
  BuildKit's: every step with its state (CACHED, running, done, ERROR) and its time, the last
  lines of a running RUN's output under it; when a step fails, its whole output after.
- `quiet` (-q): nothing; a failed RUN's output goes into the error's line.

Stages built side by side report from their worker processes (pyc.build.workers), through the
build's process for the terminal display."""

from __future__ import annotations

import os
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TAIL = 6  # a running RUN's last lines on the terminal
KEEP = 400  # of a RUN's output, what a failure shows on the terminal


class Step:
    __slots__ = ("label", "start", "took", "state", "lines", "partial")

    def __init__(self, label: str) -> None:
        self.label, self.start = label, time.monotonic()
        self.took: float | None = None
        self.state = "running"  # running, done, cached, error
        self.lines: list[str] = []
        self.partial = b""

    def elapsed(self) -> float:
        return self.took if self.took is not None else time.monotonic() - self.start

    def end(self, state: str) -> float:
        """The step ended (`done`, `cached` or `error`); how long it took."""
        self.took, self.state = time.monotonic() - self.start, state
        return self.took


class Plain:
    """Lines on standard output; a RUN writes to it directly."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def say(self, line: str) -> None:
        if not self.quiet:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def step(self, label: str) -> Step:
        self.say(label)
        return Step(label)

    def done(self, step: Step, cached: bool | None) -> None:
        took = step.end("cached" if cached else "done")
        if cached is not None:
            self.say(f"--> {'Using cache' if cached else 'Done'} ({took:.2f}s)")

    def failed(self, step: Step) -> None:
        step.end("error")

    def output(self, step: Step) -> tuple[int | None, Any]:
        """The fd a RUN's stdout and stderr go to (None: captured, for -q's error line), and
        what to call once it ended."""
        if self.quiet:
            return None, lambda: None
        sys.stdout.flush()
        return sys.stdout.fileno(), lambda: None

    def close(self) -> None:
        pass


class Tty(Plain):
    """A live display of the steps (rich, on standard output)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        super().__init__()
        self.console = Console(file=sys.stdout, force_terminal=True, highlight=False)
        self.steps: list[Step] = []
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.live = Live(self, console=self.console, refresh_per_second=8, transient=False, redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def step(self, label: str) -> Step:
        s = Step(label)
        with self.lock:
            self.steps.append(s)
        return s

    def done(self, step: Step, cached: bool | None) -> None:
        step.end("cached" if cached else "done")  # the live display shows it

    def output(self, step: Step) -> tuple[int | None, Any]:
        r, w = os.pipe()
        reader = self.follow(step, r)

        def finish() -> None:
            os.close(w)
            reader.join()

        return w, finish

    def follow(self, step: Step, fd: int) -> threading.Thread:
        """A thread that reads `fd` to its end into the step's lines (and closes it)."""
        reader = threading.Thread(target=self._read, args=(step, fd), daemon=True)
        reader.start()
        return reader

    def _read(self, step: Step, fd: int) -> None:
        with open(fd, "rb", buffering=0) as f:
            while chunk := f.read(65536):
                data = step.partial + chunk
                *lines, step.partial = data.split(b"\n")
                with self.lock:
                    step.lines += [line.decode(errors="replace").rstrip("\r") for line in lines]
                    del step.lines[:-KEEP]
        if step.partial:
            step.lines.append(step.partial.decode(errors="replace"))

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self.lock:
            steps = list(self.steps)
            done = sum(1 for s in steps if s.state in ("done", "cached"))
            table = Table.grid(expand=True)
            table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
            table.add_column(justify="right", no_wrap=True)
            for s in steps:
                tag = {"cached": "CACHED ", "error": "ERROR "}.get(s.state, "")
                style = {"running": "bold blue", "error": "bold red", "cached": "", "done": ""}[s.state]
                table.add_row(Text(f" => {tag}{s.label}", style=style), Text(f"{s.elapsed():.1f}s", style=style))
                if s.state == "running":
                    for line in s.lines[-TAIL:]:
                        table.add_row(Text(f" => => {line}", style="dim"), "")
            head = Text(f"[+] Building {time.monotonic() - self.started:.1f}s ({done}/{len(steps)})", style="bold")
        return Group(head, table)

    def close(self) -> None:
        self.live.stop()
        for s in self.steps:
            if s.state == "error" and s.lines:
                self.console.print(f"------\n > {s.label}:\n------", highlight=False, markup=False)
                for line in s.lines:
                    self.console.print(line, highlight=False, markup=False)


def make(mode: str) -> Plain:
    """`plain`, `tty`, `quiet` or `auto` (tty when standard output is a terminal that is not dumb)."""
    if mode == "auto":
        mode = "tty" if sys.stdout.isatty() and os.environ.get("TERM", "dumb") != "dumb" else "plain"
    if mode == "tty":
        return Tty()
    return Plain(quiet=mode == "quiet")
