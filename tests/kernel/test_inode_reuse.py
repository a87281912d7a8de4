"""Watched inodes name a file only while it exists: a deleted watched file's inode number given
to an unrelated file is not reported as the watched file, a flood of deleted watched-name files
does not keep a later secret from being learned (and followed through a hard link), and a
deleted file that is still open stays watched. Exact fields, real kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bee_trace.inodes import MAX_INODES, kernel_dev

FILE_ONLY = {"file_monitor"}
REUSE_TRIES = 2000           # unrelated files created until one gets the deleted file's number
FLOOD = MAX_INODES + 600     # watched-name files created, opened and deleted: more than the table


def run(argv: list[str], **kw) -> subprocess.Popen:
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, (argv, out, err)
    return p


def file_events(mon, pid: int) -> list[dict]:
    return [e for e in mon.events if e["kind"] == "file" and e["pid"] == pid]


def control(mon, path: Path) -> None:
    """A watched read after the step under test: once its event is in, everything the kernel
    sent before it has been read."""
    p = run(["cat", str(path)])
    assert mon.wait_for(lambda e: e["kind"] == "file" and e["pid"] == p.pid and e["path"] == str(path))


def reuse_number(directory: Path, ino: int) -> Path:
    """Create unrelated files in `directory` until one gets inode number `ino` (ext4 hands a
    freed number out again at once; tmpfs never does, so this runs on ext4: see tmp_path below)."""
    for i in range(REUSE_TRIES):
        p = directory / f"notes{i}.txt"
        p.write_text("nothing secret\n")
        if os.stat(p).st_ino == ino:
            return p
    pytest.skip(f"{directory}: no inode number reused in {REUSE_TRIES} files (filesystem never reuses)")




EXT_MAGIC = "ef53"            # statfs f_type of ext2/3/4


@pytest.fixture
def tmp_path(tmp_path: Path) -> Iterator[Path]:
    """pytest's tmp_path where it is on ext4, else a directory on a loop-mounted ext4 image:
    the reuse tests need a filesystem that hands a freed inode number out again, and `home`
    (conftest) builds on this fixture, so a machine whose /tmp is tmpfs runs them too."""
    fstype = subprocess.run(["stat", "-f", "-c", "%t", str(tmp_path)], capture_output=True,
                            text=True, check=True).stdout.strip()
    if fstype == EXT_MAGIC:
        yield tmp_path
        return
    image, mnt = tmp_path / "ext4.img", tmp_path / "ext4"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(256 << 20)
    run(["mkfs.ext4", "-q", "-F", str(image)])
    run(["mount", "-o", "loop", str(image), str(mnt)])
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def shm() -> Iterator[Path]:
    """A directory on tmpfs (numbers never reused: a flood there fills the table)."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        yield Path(d)


@pytest.mark.parametrize("how", ["learned", "seeded"])
def test_reused_inode_number_is_not_the_watched_file(monitor, home: Path, how: str) -> None:
    """A watched file (learned from an open by its name, or seeded at start) is deleted and its
    number given to an unrelated file: reading that file is no event at all, and neither the
    kernel's nor userspace's table names it."""
    (home / "control.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    if how == "seeded":
        secret = home / ".ssh" / "id_rsa"
        mon = monitor(FILE_ONLY)
    else:
        mon = monitor(FILE_ONLY)
        secret = home / "deploy.pem"
        secret.write_text("-----BEGIN PRIVATE KEY-----\n")
        p = run(["cat", str(secret)])
        (ev,) = mon.wait_for(lambda e: e["kind"] == "file" and e["pid"] == p.pid)
        assert ev["path"] == str(secret) and ev["match"] == "name"
    st = os.stat(secret)
    key = (kernel_dev(st.st_dev), st.st_ino)
    assert key in mon.pipeline.inodes and key in mon.pipeline.kernel.inode_entries()
    secret.unlink()
    reused = reuse_number(secret.parent, st.st_ino)
    assert kernel_dev(os.stat(reused).st_dev) == key[0]
    reader = run(["cat", str(reused)])
    control(mon, home / "control.pem")
    assert file_events(mon, reader.pid) == []
    assert not [e for e in mon.events if e.get("watched_path") == str(secret)]
    # the kernel dropped the stale entry at that open; userspace followed
    assert key not in mon.pipeline.kernel.inode_entries()
    summary = mon.pipeline.loss_summary()
    assert summary.inodes_stale == 1 and summary.inodes_not_learned == 0
    assert mon.pipeline.inodes.get(*key) is None
    assert summary.caches["watched_inodes"]["expired"] == 1


def flood(mon, directory: Path, n: int = FLOOD, keep: bool = False) -> None:
    """A process creates and opens n watched-name files (x<i>.pem) and deletes them, each at
    once (tmpfs never reuses a number) or, with `keep`, all at the end (ext4 reuses a freed
    number at once, so the table fills only with files kept until then); the monitor reads
    meanwhile."""
    code = ("import os, sys\n"
            "d, n, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1'\n"
            "for i in range(n):\n"
            "    p = f'{d}/x{i}.pem'\n"
            "    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))\n"
            "    if not keep:\n"
            "        os.unlink(p)\n"
            "for i in range(n if keep else 0):\n"
            "    os.unlink(f'{d}/x{i}.pem')\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(directory), str(n), str(int(keep))])
    while child.poll() is None:
        mon.poll(0.01)
    assert child.returncode == 0
    mon.settle(0.3)


@pytest.mark.parametrize("fs", ["tmpfs", "ext4"])
def test_flood_of_deleted_watched_files_does_not_blind_learning(monitor, shm: Path, tmp_path: Path,
                                                                fs: str) -> None:
    """More deleted watched-name files than the table holds, then a secret created after start:
    learned at its first open (the entries of the deleted files make room), so a hard link to
    an innocent name read right after is the watched file (exact pid, path, match,
    watched_path)."""
    where = shm if fs == "tmpfs" else tmp_path
    mon = monitor(FILE_ONLY)
    flood(mon, where, keep=fs == "ext4")
    per_cpu = mon.pipeline.kernel.counters_per_cpu()
    assert int(per_cpu["inodes_reclaims"].sum()) >= 1          # the table did fill
    if fs == "tmpfs":   # each file deleted before the next: the walks dropped them meanwhile
        assert int(per_cpu["inodes_reclaimed"].sum()) >= MAX_INODES - 600
    else:
        # learning failed while the flood's files existed (a table full of live files), and
        # the summary says so; nothing was learned wrong
        assert mon.pipeline.loss_summary().inodes_not_learned > 0
    # the secret on tmpfs either way: on ext4 it could get a flood file's number (that entry
    # is then stale, test above) and make room without the walk this is about
    aws = shm / "home" / ".aws"
    aws.mkdir(parents=True)
    (aws / "credentials").write_text("[default]\naws_secret_access_key = x\n")
    p = run(["sh", "-c", "cat .aws/credentials >/dev/null && ln .aws/credentials notes.txt "
                         "&& exec cat notes.txt"], cwd=shm / "home")
    innocent = str(shm / "home" / "notes.txt")
    events = mon.wait_for_n(lambda e: e["kind"] == "file" and e["path"] == innocent, 2)
    link, ev = sorted(events, key=lambda e: e["access"] != "link")
    assert link["access"] == "link" and link["old_path"] == str(aws / "credentials")
    assert ev["pid"] == p.pid and ev["comm"] == "cat" and ev["access"] == "read"
    assert ev["match"] == "inode" and ev["watched_path"] == str(aws / "credentials")
    assert ev["rule"] == "file.cloud_credential.read" and ev["severity"] == "critical"
    summary = mon.pipeline.loss_summary()
    # ext4: the secret's learning walked the table full of the flood's deleted files
    assert summary.inodes_reclaimed >= MAX_INODES - 600
    assert (summary.inodes_not_learned == 0) == (fs == "tmpfs")   # ext4: counted while they lived
    assert summary.inodes_reclaimed == int(mon.pipeline.kernel.counters_per_cpu()["inodes_reclaimed"].sum())
    assert summary.caches["watched_inodes"]["entries"] <= MAX_INODES
    assert any(r["reason"] == "inodes_not_learned" for r in summary.verdict_reasons) == (fs == "ext4")


HOLDER = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)      # learned: opened by its watched name
os.unlink(sys.argv[1])
print(fd, flush=True)
for line in sys.stdin:
    if line.strip() == "reopen":
        print(os.read(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY), 64).decode().strip(), flush=True)
    else:
        break
"""


def test_deleted_but_open_watched_file_stays_watched(monitor, tmp_path: Path, shm: Path) -> None:
    """A watched file deleted while a process holds it: a flood that makes the kernel drop the
    entries of deleted files keeps this one (it is still open). Another process reading it
    through /proc/PID/fd/N is proc_fd aimed at the holder; the holder's own reopen through
    /proc/self/fd/N is the watched inode (it already holds the file, so not proc_fd)."""
    secret = tmp_path / "deploy.key"
    secret.write_text("TOPSECRET\n")
    st = os.stat(secret)
    key = (kernel_dev(st.st_dev), st.st_ino)
    mon = monitor()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(secret)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        fd = int(holder.stdout.readline())
        (first,) = mon.wait_for(lambda e: e["kind"] == "file" and e["pid"] == holder.pid)
        assert first["path"] == str(secret) and first["match"] == "name"
        flood(mon, shm)
        assert int(mon.pipeline.kernel.counters_per_cpu()["inodes_reclaims"].sum()) >= 1
        assert key in mon.pipeline.kernel.inode_entries()
        cat = run(["cat", f"/proc/{holder.pid}/fd/{fd}"])
        (mem,) = mon.wait_for(lambda e: e["kind"] == "memory" and e["pid"] == cat.pid)
        assert mem["technique"] == "proc_fd" and mem["target_pid"] == holder.pid
        assert mem["path"] == f"/proc/{holder.pid}/fd/{fd}" and mem["access"] == "read"
        assert (mem["dev"], mem["ino"]) == key and mem["rule"] == "memory.proc_fd" and mem["severity"] == "high"
        holder.stdin.write("reopen\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "TOPSECRET"
        events = mon.wait_for_n(lambda e: e["kind"] == "file" and e["pid"] == holder.pid, 2)
        assert len(events) == 2, events
        ev = events[1]
        # the dentry keeps its name after the unlink: the watched name, no watched_path
        assert ev["match"] == "inode" and ev["path"] == str(secret) and "watched_path" not in ev
        assert ev["requested_path"] == f"/proc/self/fd/{fd}" and (ev["dev"], ev["ino"]) == key
        assert ev["rule"] == "file.private_key.read"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
