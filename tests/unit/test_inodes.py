"""The userspace copy of watched_inodes names a file only while its number is that file's: an
event with another i_generation, or the kernel dropping the entry, makes it forget the name;
the bound refuses, never pushes out a file that exists."""

from __future__ import annotations

from typing import Any

from bee_trace.config import default_config
from bee_trace.confirm import Confirmer, Reject
from bee_trace.inodes import InodeTable, WatchedInode

DEV, INO = 266338304, 4242


def test_other_generation_is_another_file_and_the_entry_expires() -> None:
    t = InodeTable()
    assert t.add(WatchedInode(DEV, INO, "/home/u/.ssh/id_rsa", gen=7))
    assert t.get(DEV, INO, 7) == WatchedInode(DEV, INO, "/home/u/.ssh/id_rsa", 7)
    assert t.get(DEV, INO) is not None            # no generation to compare (a fold key)
    assert t.get(DEV, INO, 8) is None             # the number belongs to another file now
    assert len(t) == 0 and t.expired == 1
    assert t.get(DEV, INO, 7) is None


def test_first_name_of_one_file_stays_and_another_incarnation_replaces_it() -> None:
    t = InodeTable()
    t.add(WatchedInode(DEV, INO, "/app/.env", gen=None))          # seeded, not adopted yet
    t.add(WatchedInode(DEV, INO, "/app/copy.env", gen=3))         # same file, second name
    assert t.get(DEV, INO, 3) == WatchedInode(DEV, INO, "/app/.env", 3)
    t.add(WatchedInode(DEV, INO, "/app/new.pem", gen=4))          # the number, another file
    assert t.get(DEV, INO, 4) == WatchedInode(DEV, INO, "/app/new.pem", 4)
    assert t.expired == 1 and len(t) == 1


def test_bound_refuses_and_sync_follows_the_kernel() -> None:
    t = InodeTable(bound=3)
    for i in range(3):
        assert t.add(WatchedInode(DEV, i + 1, f"/tmp/x{i}.pem", gen=10 + i))
    assert t.full and not t.add(WatchedInode(DEV, 99, "/home/u/.aws/credentials", gen=1))
    assert t.refused == 1 and 99 not in {w.ino for w in t}
    # the kernel dropped x0 (deleted), has x1 as another file (gen 50), kept x2
    assert t.sync({(DEV, 2): 50, (DEV, 3): 12}) == 2
    assert [w.path for w in t] == ["/tmp/x2.pem"] and t.expired == 2
    assert t.add(WatchedInode(DEV, 99, "/home/u/.aws/credentials", gen=1))
    # an entry the kernel adopted after userspace wrote it gets its generation
    t.add(WatchedInode(DEV, 5, "/home/u/.netrc"))
    t.sync({(DEV, 3): 12, (DEV, 99): 1, (DEV, 5): 77})
    assert t.get(DEV, 5) == WatchedInode(DEV, 5, "/home/u/.netrc", 77)


def _file_event(path: str, gen: int, match: str = "inode") -> dict[str, Any]:
    return {"kind": "file", "path": path, "dev": DEV, "ino": INO, "generation": gen,
            "access": "read", "comm": "cat", "match": match}


def test_confirm_names_only_the_same_file() -> None:
    t = InodeTable()
    t.add(WatchedInode(DEV, INO, "/home/u/.ssh/id_rsa", gen=7))
    c = Confirmer(default_config(), None, t, lambda w, follow: w)
    ev = _file_event("/home/u/repo/notes", 7)
    assert c.confirm(ev) is None and ev["watched_path"] == "/home/u/.ssh/id_rsa"
    # the key was deleted and the number reused by an unrelated file: not the key
    ev = _file_event("/home/u/repo/notes", 8, match="name")
    assert c.confirm(ev) is Reject.UNCONFIRMED and "watched_path" not in ev
    assert len(t) == 0 and t.expired == 1


def test_confirm_syncs_a_full_table_before_giving_up_a_name() -> None:
    t = InodeTable(bound=1)
    t.add(WatchedInode(DEV, 1, "/tmp/x0.pem", gen=1))
    synced: list[int] = []

    def sync() -> None:
        synced.append(t.sync({}))       # the kernel dropped x0: deleted

    c = Confirmer(default_config(), None, t, lambda w, follow: w, sync)
    ev = _file_event("/home/u/.aws/credentials", 5, match="name")
    assert c.confirm(ev) is None
    assert synced == [1] and t.get(DEV, INO, 5) == WatchedInode(DEV, INO, "/home/u/.aws/credentials", 5)
