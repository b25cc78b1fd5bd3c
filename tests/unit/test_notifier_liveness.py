"""Whether the last notifier leader is surely dead, from /proc readings (a fake tree):
only a process of this boot and pid namespace that no longer exists, or whose pid now
belongs to a process started at another time; anything uncertain is "not known"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.notifier.adapters.liveness import Holder, ProcView

BOOT = "5fc82c1f-cee4-413d-9bf5-5f2fb60eb3ff"
NAMESPACE = "pid:[4026531836]"
ME = 4242


def stat_line(pid: int, start: int, command: str = "python3") -> str:
    # Fields 3.. after "(command)": state, ppid, ..., field 22 is the start time.
    rest = ["S", "1"] + ["0"] * 17 + [str(start)] + ["0"] * 30
    return f"{pid} ({command}) {' '.join(rest)}\n"


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "sys/kernel/random").mkdir(parents=True)
        (root / "sys/kernel/random/boot_id").write_text(BOOT + "\n")
        self.process("self", ME, 1000)
        (root / "self/ns").mkdir()
        os.symlink(NAMESPACE, root / "self/ns/pid")  # a readlink, as /proc's are

    def process(self, name: str, pid: int, start: int, command: str = "python3") -> None:
        (self.root / name).mkdir(exist_ok=True)
        (self.root / name / "stat").write_text(stat_line(pid, start, command))

    def view(self, pid: int = ME) -> ProcView:
        return ProcView(self.root, pid=pid)


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path)


def predecessor(pid: int = 777, start: int = 500, **changes: str) -> Holder:
    fields = {"boot_id": BOOT, "pid_namespace": NAMESPACE, **changes}
    return Holder(fields["boot_id"], fields["pid_namespace"], pid, start)


def test_this_process_is_read_from_proc(proc: FakeProc) -> None:
    assert proc.view().this_process() == Holder(BOOT, NAMESPACE, ME, 1000)


def test_a_predecessor_whose_pid_is_gone_is_dead(proc: FakeProc) -> None:
    assert proc.view().is_gone(predecessor())


def test_a_predecessor_whose_pid_was_reused_by_a_later_process_is_dead(proc: FakeProc) -> None:
    proc.process("777", 777, start=900, command="a (new) one")
    assert proc.view().is_gone(predecessor(start=500))


def test_a_predecessor_still_running_is_not_dead(proc: FakeProc) -> None:
    proc.process("777", 777, start=500, command="python3 (x) y")
    assert not proc.view().is_gone(predecessor(start=500))


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"boot_id": "another-boot-or-host"},
        {"pid_namespace": "pid:[4026532000]"},  # another container
    ],
)
def test_a_predecessor_of_another_boot_or_namespace_is_not_known_dead(
    proc: FakeProc, elsewhere: dict[str, str]
) -> None:
    assert not proc.view().is_gone(predecessor(**elsewhere))


def test_a_proc_that_is_not_this_processs_own_tells_nothing(proc: FakeProc) -> None:
    assert proc.view(pid=ME + 1).this_process() is None  # /proc/self is someone else
    assert not proc.view(pid=ME + 1).is_gone(predecessor())


def test_an_unreadable_proc_tells_nothing(proc: FakeProc) -> None:
    (proc.root / "sys/kernel/random/boot_id").unlink()
    assert not proc.view().is_gone(predecessor())


def test_an_unreadable_or_garbled_stat_of_the_predecessor_tells_nothing(proc: FakeProc) -> None:
    (proc.root / "777").mkdir()
    (proc.root / "777/stat").mkdir()  # a read fails, but not as "no such process"
    assert not proc.view().is_gone(predecessor())
    proc.process("778", 778, start=500)
    (proc.root / "778/stat").write_text("778 (python3")
    assert not proc.view().is_gone(predecessor(pid=778))


@pytest.mark.parametrize("recorded", [None, "", "garbage", f"{BOOT} {NAMESPACE} x 1"])
def test_an_unrecorded_or_malformed_holder_is_not_known_dead(
    proc: FakeProc, recorded: str | None
) -> None:
    assert not proc.view().is_gone(Holder.parse(recorded))


def test_a_holder_survives_its_stored_form() -> None:
    holder = predecessor()
    assert Holder.parse(holder.text()) == holder


def test_the_real_proc_knows_this_process_alive() -> None:
    view = ProcView()
    me = view.this_process()
    assert me is not None and me.pid == os.getpid()
    assert not view.is_gone(me)
