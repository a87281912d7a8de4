"""The file monitor decides on the struct file the kernel opened: every way of reaching a
watched file that a string-matching monitor misses is tried here, with exact fields."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FILE_ONLY = {"file_monitor"}
HELPER_SRC = Path(__file__).parent / "helpers" / "evade.c"


@pytest.fixture(scope="session")
def evade(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("helpers") / "evade"
    subprocess.run(["gcc", "-O1", "-o", str(out), str(HELPER_SRC)], check=True)
    return str(out)




def run(argv: list[str], **kw) -> subprocess.Popen:
    """Start a child and wait for it; the caller asserts on the child's own pid."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, (argv, out, err)
    return p


def file_event(mon, pid: int, path: str) -> dict:
    events = mon.wait_for(lambda e: e["kind"] == "file" and e["pid"] == pid and e["path"] == path)
    assert events, f"no file event from pid {pid} for {path}; got " + repr(
        [(e["pid"], e.get("path")) for e in mon.events if e["kind"] == "file"])
    assert len(events) == 1
    return events[0]


def test_plain_cat_positive_control(monitor, home: Path) -> None:
    mon = monitor(FILE_ONLY)
    key = str(home / ".ssh" / "id_rsa")
    p = run(["cat", key])
    ev = file_event(mon, p.pid, key)
    assert ev["access"] == "read" and ev["comm"] == "cat" and ev["severity"] == "critical"
    assert "requested_path" not in ev and ev["origin"] == "syscall" and ev["truncated"] is False


def test_int80_open_from_64bit_process(monitor, home: Path, evade: str) -> None:
    mon = monitor(FILE_ONLY)
    key = str(home / ".ssh" / "id_rsa")
    p = run([evade, "open32", key])
    ev = file_event(mon, p.pid, key)
    assert ev["origin"] == "compat" and ev["syscall"] == 5 and ev["access"] == "read"
    assert ev["severity"] == "critical"
    # openat(2) through int 0x80, relative to a directory fd
    p = run([evade, "openat32", str(home / ".ssh"), "id_rsa"])
    ev = file_event(mon, p.pid, key)
    assert ev["origin"] == "compat" and ev["syscall"] == 295 and ev["requested_path"] == "id_rsa"


def test_max_performance_profile_sees_native_opens_and_says_it_misses_compat(
        monitor, home: Path, evade: str) -> None:
    """max-performance swaps the every-syscall probe for the open family's own tracepoints: a
    native open is still reported, an int 0x80 open is not, and the verdict names the gap."""
    mon = monitor(FILE_ONLY, profile="max-performance")
    key = str(home / ".ssh" / "id_rsa")
    compat = run([evade, "open32", key])
    native = subprocess.run(["cat", key], capture_output=True, timeout=30)
    assert native.returncode == 0
    ev = mon.wait_for(lambda e: e["kind"] == "file" and e["path"] == key and e["comm"] == "cat")
    assert len(ev) == 1 and ev[0]["origin"] == "syscall" and ev[0]["syscall"] == 257
    assert [e for e in mon.events if e["kind"] == "file" and e.get("pid") == compat.pid] == []
    summary = mon.pipeline.stop().to_json()
    assert summary["coverage_gaps"] == ["compat_syscalls"]
    assert summary["verdict"] == "degraded"
    assert {"reason": "coverage", "unwatched": "compat_syscalls"} in summary["verdict_reasons"]


def test_dotdot_through_excluded_git_dir_is_reported(monitor, home: Path) -> None:
    """The raw string matches the default exclusion **/.git/**; the opened file does not."""
    mon = monitor(FILE_ONLY)
    (home / "repo" / ".git").mkdir(parents=True)
    spelled = str(home / "repo" / ".git" / ".." / ".." / ".ssh" / "id_rsa")
    key = str(home / ".ssh" / "id_rsa")
    p = run(["cat", spelled])
    ev = file_event(mon, p.pid, key)
    assert ev["requested_path"] == spelled and ev["severity"] == "critical"


def test_symlink_reports_the_target(monitor, home: Path) -> None:
    mon = monitor(FILE_ONLY)
    link = home / "notes.txt"
    link.symlink_to(home / ".ssh" / "id_rsa")
    p = run(["cat", str(link)])
    ev = file_event(mon, p.pid, str(home / ".ssh" / "id_rsa"))
    assert ev["requested_path"] == str(link)


def test_hard_link_matched_by_inode(monitor, home: Path) -> None:
    mon = monitor(FILE_ONLY)
    (home / "repo" / ".git").mkdir(parents=True)
    alias = home / "repo" / ".git" / "notes"      # an unwatched, even excluded, name
    os.link(home / ".ssh" / "id_rsa", alias)
    p = run(["cat", str(alias)])
    ev = file_event(mon, p.pid, str(alias))
    assert ev["match"] == "inode" and ev["watched_path"] == str(home / ".ssh" / "id_rsa")
    assert ev["severity"] == "critical" and ev["rule"] == "file.ssh_key.read"


def test_open_by_handle_at(monitor, home: Path, evade: str) -> None:
    mon = monitor(FILE_ONLY)
    key = str(home / ".ssh" / "id_rsa")
    p = run([evade, "handle", key, str(home)])
    ev = file_event(mon, p.pid, key)
    assert ev["syscall"] == 304 and ev["access"] == "read"  # x86-64 open_by_handle_at


def test_creat_is_a_write(monitor, home: Path, evade: str) -> None:
    mon = monitor(FILE_ONLY)
    target = str(home / "deploy.key")
    p = run([evade, "creat", target])
    ev = file_event(mon, p.pid, target)
    assert ev["access"] == "write" and ev["syscall"] == 85


@pytest.mark.parametrize("flags,access", [(os.O_RDWR, "write"), (os.O_WRONLY | os.O_APPEND, "write"),
                                          (os.O_RDONLY, "read")])
def test_access_from_the_opened_file(monitor, home: Path, flags: int, access: str) -> None:
    mon = monitor(FILE_ONLY)
    key = str(home / ".ssh" / "id_rsa")
    code = f"import os; os.close(os.open({key!r}, {flags}))"
    p = run([sys.executable, "-c", code])
    assert file_event(mon, p.pid, key)["access"] == access


@pytest.mark.parametrize("call,nr", [("libc.syscall(437, -100, KEY, how, len(how))", 437),
                                     ("libc.syscall(2, KEY, 0)", 2)])
def test_openat2_and_open(monitor, home: Path, call: str, nr: int) -> None:
    mon = monitor(FILE_ONLY)
    key = str(home / ".ssh" / "id_rsa")
    code = ("import ctypes, os, struct\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "how = struct.pack('QQQ', os.O_RDONLY, 0, 0)\n"
            f"KEY = {key.encode()!r}\n"
            f"fd = {call}\n"
            "assert fd >= 0, ctypes.get_errno()\n")
    p = run([sys.executable, "-c", code])
    assert file_event(mon, p.pid, key)["syscall"] == nr


def test_io_uring_openat(monitor, home: Path, evade: str) -> None:
    mon = monitor(FILE_ONLY)
    key = str(home / ".ssh" / "id_rsa")
    p = run([evade, "uring", key])
    ev = file_event(mon, p.pid, key)
    assert ev["origin"] == "io_uring" and ev["syscall"] == 18  # IORING_OP_OPENAT
    setups = mon.wait_for(lambda e: e["kind"] == "process" and e.get("op") == "io_uring_setup"
                          and e["pid"] == p.pid)
    assert len(setups) == 1 and setups[0]["severity"] == "low"


def test_io_uring_openat_into_fixed_file_slot(monitor, home: Path, evade: str) -> None:
    """IORING_OP_OPENAT with file_index installs no fd: decided on the ring's fixed-file table."""
    mon = monitor(FILE_ONLY)
    key = str(home / ".ssh" / "id_rsa")
    p = run([evade, "uring_fixed", key])
    ev = file_event(mon, p.pid, key)
    assert ev["origin"] == "io_uring" and ev["syscall"] == 18 and ev["access"] == "read"


def test_o_path_reopened_through_proc_self_fd(monitor, home: Path) -> None:
    mon = monitor(FILE_ONLY)
    key = str(home / ".ssh" / "id_rsa")
    code = (f"import os; fd = os.open({key!r}, os.O_PATH)\n"
            "os.close(os.open(f'/proc/self/fd/{fd}', os.O_RDONLY))\n"
            "print(fd)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    fd = int(p.communicate(timeout=30)[0])
    ev = file_event(mon, p.pid, key)
    assert ev["requested_path"] == f"/proc/self/fd/{fd}"
    # the O_PATH open itself gives no access to the data and is not a read
    assert len([e for e in mon.events if e["kind"] == "file" and e["pid"] == p.pid]) == 1


def test_path_in_unfaulted_page(monitor, home: Path, evade: str) -> None:
    mon = monitor(FILE_ONLY)
    key = str(home / ".ssh" / "id_rsa")
    p = run([evade, "unfaulted", key])
    ev = file_event(mon, p.pid, key)
    assert ev["access"] == "read"


def test_cwd_relative_opens_inside_credential_dirs(monitor, home: Path) -> None:
    """tar/cp -r style: cd into ~/.azure and open bare names."""
    mon = monitor(FILE_ONLY)
    (home / ".azure").mkdir()
    (home / ".azure" / "msal_token_cache.json").write_text("{}")
    (home / ".config" / "gcloud").mkdir(parents=True)
    (home / ".config" / "gcloud" / "application_default_credentials.json").write_text("{}")
    p = run(["sh", "-c", "cd .azure && cat msal_token_cache.json && cd ../.config/gcloud && "
             "cat application_default_credentials.json"], cwd=home)
    assert p.returncode == 0
    for path in (home / ".azure" / "msal_token_cache.json",
                 home / ".config" / "gcloud" / "application_default_credentials.json"):
        events = mon.wait_for(lambda e, path=path: e["kind"] == "file" and e["path"] == str(path))
        assert events and events[0]["comm"] == "cat" and events[0]["requested_path"] == path.name


def test_benign_symlink_and_proc_self_fd_not_reported(monitor, tmp_path: Path) -> None:
    mon = monitor(FILE_ONLY)
    link = tmp_path / "host"
    link.symlink_to("/etc/hostname")
    code = (f"import os; open({str(link)!r}).read(); fd = os.open('/etc/hostname', os.O_PATH)\n"
            "open(f'/proc/self/fd/{fd}').read()\n")
    p = run([sys.executable, "-c", code])
    mon.settle(0.5)
    assert not [e for e in mon.events if e["kind"] == "file" and e["pid"] == p.pid]
    assert mon.pipeline.loss_summary().inspected > 0


def test_hostile_requested_path_escaped(monitor, home: Path) -> None:
    import json

    from bee_trace.sinks.jsonl import to_json_line

    mon = monitor(FILE_ONLY)
    name = "x\n\x1b[2Jevil"
    link = home / name
    link.symlink_to(home / ".ssh" / "id_rsa")
    p = run(["cat", str(link)])
    ev = file_event(mon, p.pid, str(home / ".ssh" / "id_rsa"))
    assert json.loads(to_json_line(ev))["requested_path"] == str(link)


@pytest.mark.parametrize("profile", ["balanced", "max-performance"])
def test_link_and_rename_of_watched_names(monitor, home: Path, profile: str) -> None:
    """Both ways of seeing link/rename: raw_tp/sys_exit (the default) and each syscall's own
    exit tracepoint (max-performance)."""
    mon = monitor(FILE_ONLY, profile=profile)
    key = home / ".ssh" / "id_rsa"
    p = run(["sh", "-c", "cd .ssh && ln id_rsa ../alias && ln -s \"$PWD/id_rsa\" ../soft"], cwd=home)
    links = mon.wait_for(lambda e: e["kind"] == "file" and e["access"] == "link"
                         and e["path"] in (str(home / "alias"), str(home / "soft")))
    links = mon.wait_for(lambda e: e["kind"] == "file" and e["access"] == "link" and len(links) == 2
                         and e["path"] in (str(home / "alias"), str(home / "soft")), 1) or links
    assert sorted((e["path"], e["old_path"]) for e in links) == [
        (str(home / "alias"), str(key)), (str(home / "soft"), str(key))]
    assert all(e["comm"] == "ln" and e["severity"] == "critical" for e in links)
    assert links[0]["rule"] == "file.ssh_key.link"
    p = run(["mv", str(key), str(home / "innocent")])
    (ren,) = mon.wait_for(lambda e: e["kind"] == "file" and e["access"] == "rename" and e["pid"] == p.pid)
    assert ren["path"] == str(home / "innocent") and ren["old_path"] == str(key)
    p = run(["cat", str(home / "innocent")])
    ev = file_event(mon, p.pid, str(home / "innocent"))
    assert ev["match"] == "inode" and ev["severity"] == "critical"


def test_file_created_after_start_followed_through_link(monitor, tmp_path: Path) -> None:
    """Not seeded at start: the kernel learns the inode when the watched name is opened, so a
    hard link made and read right after (no wait in between) is still caught."""
    mon = monitor(FILE_ONLY)
    app = tmp_path / "app"
    app.mkdir()
    (app / ".env").write_text("TOKEN=x\n")
    p = run(["sh", "-c", "cat .env >/dev/null && ln .env notes.txt && cat notes.txt"], cwd=app)
    assert p.returncode == 0
    events = mon.wait_for(lambda e: e["kind"] == "file" and e["path"] == str(app / "notes.txt")
                          and e["access"] == "read")
    assert events and events[0]["match"] == "inode" and events[0]["comm"] == "cat"
    assert events[0]["watched_path"] == str(app / ".env")
