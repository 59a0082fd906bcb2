"""The one place netd runs other programs (firewall tools)."""

from __future__ import annotations

import subprocess

from netd.errors import CommandError


def run(argv: list[str], stdin: str | None = None, timeout: float = 30, ok: tuple[int, ...] = (0,)) -> str:
    try:
        proc = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise CommandError(f"failed to run {argv[0]}: not installed") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"failed to run {' '.join(argv)}: timed out after {timeout}s") from None
    if proc.returncode not in ok:
        cause = (proc.stderr or proc.stdout).strip().splitlines()
        raise CommandError(
            f"failed to run {' '.join(argv)}: exit {proc.returncode}: {' / '.join(cause[-3:])}"
        )
    return proc.stdout


def spawn(argv: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """A long-running helper (netd's DNS server), its output on netd's stderr."""
    try:
        return subprocess.Popen(argv, pass_fds=pass_fds, stdin=subprocess.DEVNULL, close_fds=True)
    except OSError as e:
        raise CommandError(f"failed to start {' '.join(argv)}: {e.strerror}") from None
