"""Whether the last leader is surely dead: only a process on this very host can tell.

A leader records who it is (`Holder`): the host's boot id, its pid namespace, its pid
and its start time (in clock ticks since boot, /proc/<pid>/stat field 22). A restarted
notifier that finds its predecessor on the same boot and in the same pid namespace
looks it up in /proc: no such pid, or a pid started at another time (reused), means
that process is gone, and a process that is gone sends nothing more. What it may have
left in its sockets' buffers is at most the email it was handing over (the row is still
`sending`, so it is re-sent anyway: the one duplicate a crash may make). So the new
leader need not wait out its fence.

Anything uncertain answers "not known to be dead", and the fence is waited out as
before: another host or container (another boot or pid namespace), a /proc that is not
this process's own, a file that cannot be read or parsed, a pid that is still there
with the same start time (alive, or a zombie not yet reaped).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Holder", "ProcView"]


@dataclass(frozen=True)
class Holder:
    boot_id: str
    pid_namespace: str
    pid: int
    start_time: int

    def text(self) -> str:
        return f"{self.boot_id} {self.pid_namespace} {self.pid} {self.start_time}"

    @classmethod
    def parse(cls, text: str | None) -> Holder | None:
        try:
            boot_id, namespace, pid, start = (text or "").split(" ")
            return cls(boot_id, namespace, int(pid), int(start))
        except ValueError:
            return None


class ProcView:
    """This host's /proc (`root` and `pid` are for tests: a fake tree, a fake self)."""

    def __init__(self, root: Path = Path("/proc"), pid: int | None = None) -> None:
        self._root = root
        self._pid = os.getpid() if pid is None else pid

    def this_process(self) -> Holder | None:
        """Who this process is, or None if /proc does not say it clearly."""
        try:
            boot_id = (self._root / "sys/kernel/random/boot_id").read_text().strip()
            namespace = os.readlink(self._root / "self/ns/pid")
            pid, start = self._stat("self")
        except (OSError, ValueError):
            return None
        if pid != self._pid or not boot_id:
            return None  # a /proc mounted for another pid namespace
        return Holder(boot_id, namespace, pid, start)

    def is_gone(self, holder: Holder | None) -> bool:
        """True only when `holder` is surely a process of this host that has ended."""
        me = self.this_process()
        if holder is None or me is None:
            return False
        if (holder.boot_id, holder.pid_namespace) != (me.boot_id, me.pid_namespace):
            return False
        try:
            pid, start = self._stat(str(holder.pid))
        except FileNotFoundError:
            return True
        except (OSError, ValueError):
            return False
        return pid != holder.pid or start != holder.start_time

    def _stat(self, name: str) -> tuple[int, int]:
        """(pid, start time) from /proc/<name>/stat; the command name, in parentheses,
        may hold spaces and parentheses itself: the fields after it follow the last ')'."""
        text = (self._root / name / "stat").read_text()
        pid = int(text.split(" ", 1)[0])
        fields = text[text.rindex(")") + 2 :].split()
        return pid, int(fields[19])  # field 22 of the line; fields[0] is its 3rd
