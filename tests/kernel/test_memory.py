"""Memory-access monitor acceptance tests: a `Runner.Worker` child holding a fake secret in its
environment and memory; other children read it every way an attacker would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PY = sys.executable
SECRET = b"ghp_FAKESECRETFAKESECRETFAKESECRET00"

TARGET = """
import ctypes, sys, time
libc = ctypes.CDLL(None)
libc.prctl(15, b"Runner.Worker", 0, 0, 0)       # PR_SET_NAME
buf = ctypes.create_string_buffer(sys.argv[1].encode())
print(ctypes.addressof(buf), flush=True)
time.sleep(120)
"""


@pytest.fixture
def worker():
    env = dict(os.environ, GITHUB_TOKEN=SECRET.decode(), ACTIONS_RUNTIME_TOKEN="fake")
    p = subprocess.Popen([PY, "-c", TARGET, SECRET.decode()], stdout=subprocess.PIPE, env=env,
                         text=True)
    addr = int(p.stdout.readline())
    yield p.pid, addr
    p.kill()
    p.wait()


def attack(code: str, *args: object, via_bash: bool = True) -> subprocess.CompletedProcess:
    """Run attacker code in `bash -c '<python> ...; true'` so the ancestry is ... → bash → python."""
    code = "import os as _os, sys as _sys; _sys.stderr.write('PID=%d\\n' % _os.getpid())\n" + \
        textwrap.dedent(code)
    argv = [PY, "-c", code, *map(str, args)]
    if via_bash:
        cmd = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv) + "; true"
        argv = ["bash", "-c", cmd]
    return subprocess.run(argv, capture_output=True, timeout=60)


def attacker_pid(p: subprocess.CompletedProcess) -> int:
    return int(p.stderr.split(b"PID=", 1)[1].split()[0])


def mem_events(m, target: int, technique: str, **want):
    """Matching memory events (other agents on this machine may read the target too: callers
    pin the attacker's pid)."""
    return m.wait_for(lambda e: e["kind"] == "memory" and e["target_pid"] == target
                      and e["technique"] == technique
                      and all(e.get(k) == v for k, v in want.items()))


def check_attack_event(ev, target: int) -> None:
    assert ev["target_pid"] == target
    assert ev["target_comm"] == "Runner.Worker"
    assert ev["lane"] == "critical"
    assert ev["severity"] == "critical", (ev["severity"], ev.get("rule"))
    assert ev["pid"] != target
    anc = ev["ancestry"]
    assert len(anc) >= 2 and anc[-1] == ev["comm"] and anc[-2] == "bash", anc
    assert ev["exe"]


def test_proc_maps_then_mem_python(monitor, worker):
    target, addr = worker
    m = monitor()
    code = """
    import sys
    pid, addr = int(sys.argv[1]), int(sys.argv[2])
    open(f'/proc/{pid}/maps').read()
    with open(f'/proc/{pid}/mem', 'rb') as f:
        f.seek(addr)
        sys.stdout.buffer.write(f.read(36))
    """
    p = attack(code, target, addr)
    assert SECRET in p.stdout
    pid = attacker_pid(p)
    (maps,) = mem_events(m, target, "proc_maps", pid=pid)
    (mem,) = mem_events(m, target, "proc_mem", pid=pid)
    for ev in (maps, mem):
        check_attack_event(ev, target)
    assert maps["pid"] == mem["pid"]
    assert mem["path"] == f"/proc/{target}/mem"


def test_proc_mem_dd(monitor, worker):
    target, addr = worker
    m = monitor()
    p = subprocess.run(["bash", "-c", f"dd if=/proc/{target}/mem bs=1 skip={addr} count=36 "
                        "status=none; true"], capture_output=True, timeout=60)
    assert SECRET in p.stdout
    (ev,) = mem_events(m, target, "proc_mem", comm="dd")
    check_attack_event(ev, target)
    assert ev["exe"] == "/usr/bin/dd"


def test_proc_environ(monitor, worker):
    target, _ = worker
    m = monitor()
    p = attack("import sys; sys.stdout.buffer.write(open(f'/proc/{sys.argv[1]}/environ','rb').read())",
               target)
    assert SECRET in p.stdout
    (ev,) = mem_events(m, target, "proc_environ", pid=attacker_pid(p))
    check_attack_event(ev, target)
    assert "GITHUB_TOKEN" in ev.get("secret_env_names", [])


PTRACE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid, addr, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if mode == 'attach':
    assert libc.ptrace(16, pid, None, None) == 0, ctypes.get_errno()        # PTRACE_ATTACH
else:
    assert libc.ptrace(0x4206, pid, None, None) == 0, ctypes.get_errno()    # PTRACE_SEIZE
    assert libc.ptrace(0x4207, pid, None, None) == 0                          # PTRACE_INTERRUPT
os.waitpid(pid, 0)
word = libc.ptrace(2, pid, ctypes.c_void_p(addr), None)                       # PTRACE_PEEKDATA
sys.stdout.buffer.write(word.to_bytes(8, 'little', signed=True))
libc.ptrace(17, pid, None, None)                                              # PTRACE_DETACH
"""


@pytest.mark.parametrize("mode,request_", [("attach", 16), ("seize", 0x4206)])
def test_ptrace(monitor, worker, mode, request_):
    target, addr = worker
    m = monitor()
    p = attack(PTRACE, target, addr, mode)
    assert p.stdout == SECRET[:8], p.stderr
    evs = mem_events(m, target, "ptrace", pid=attacker_pid(p))
    reqs = sorted(e["ptrace_request"] for e in evs)
    assert reqs == sorted([request_, 2]), reqs          # the attach/seize and the PEEKDATA
    for ev in evs:
        check_attack_event(ev, target)


def test_process_vm_readv_and_pidfd_getfd(monitor, worker):
    target, addr = worker
    m = monitor()
    code = """
    import ctypes, os, sys
    pid, addr = int(sys.argv[1]), int(sys.argv[2])
    libc = ctypes.CDLL(None, use_errno=True)
    class iovec(ctypes.Structure):
        _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
    buf = ctypes.create_string_buffer(36)
    local, remote = iovec(ctypes.addressof(buf), 36), iovec(addr, 36)
    n = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    sys.stdout.buffer.write(buf.raw[:n])
    pidfd = os.pidfd_open(pid)
    fd = libc.syscall(438, pidfd, 1, 0)                                       # pidfd_getfd(stdout)
    sys.stdout.buffer.write(b' getfd=%d' % (fd >= 0))
    """
    p = attack(code, target, addr)
    assert SECRET in p.stdout and b"getfd=1" in p.stdout
    (ev,) = mem_events(m, target, "process_vm_readv", pid=attacker_pid(p))
    check_attack_event(ev, target)
    (gf,) = mem_events(m, target, "pidfd_getfd", pid=attacker_pid(p))
    check_attack_event(gf, target)


def test_self_access_is_not_an_event(monitor, worker):
    target, _ = worker
    m = monitor()
    code = """
    import ctypes, os, sys
    open('/proc/self/maps').read(); open(f'/proc/{os.getpid()}/mem', 'rb').close()
    open(f'/proc/{os.getpid()}/environ', 'rb').read()
    libc = ctypes.CDLL(None)
    class iovec(ctypes.Structure):
        _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
    a, b = ctypes.create_string_buffer(8), ctypes.create_string_buffer(8)
    libc.process_vm_readv(os.getpid(), ctypes.byref(iovec(ctypes.addressof(a), 8)), 1,
                          ctypes.byref(iovec(ctypes.addressof(b), 8)), 1, 0)
    print(os.getpid(), flush=True)
    open(f'/proc/{sys.argv[1]}/maps').read()     # the marker: another process, reported
    """
    p = attack(code, target, via_bash=False)
    pid = attacker_pid(p)
    # Once the marker (the last access) is read, every earlier one would have been too.
    (marker,) = mem_events(m, target, "proc_maps", pid=pid)
    assert [e for e in m.events if e["kind"] == "memory" and e["pid"] == pid] == [marker]


def test_connect_flood_does_not_hide_memory_read(monitor, worker):
    """100,000 refused loopback connects on the bulk lane (a small ring, not drained meanwhile)
    while /proc/PID/mem is read: the memory event arrives; every bulk loss is counted."""
    target, addr = worker
    m = monitor({"network_monitor", "memory_monitor"}, ring_bulk_bytes=256 << 10,
                ring_critical_bytes=4 << 20)
    s = __import__("socket").socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    flood = subprocess.Popen([PY, "-c", textwrap.dedent("""
        import socket, sys
        port = int(sys.argv[1])
        for i in range(100_000):
            s = socket.socket()
            try: s.connect(('127.0.0.1', port))
            except OSError: pass
            s.close()
            if i == 1000: print('go', flush=True)
        """), str(port)], stdout=subprocess.PIPE, text=True)
    assert flood.stdout.readline().strip() == "go"
    code = "import os, sys; sys.stderr.write('PID=%d\\n' % os.getpid()); sys.stderr.flush()\n" \
        "f = open(f'/proc/{sys.argv[1]}/mem', 'rb'); f.seek(int(sys.argv[2]))\n" \
        "sys.stdout.buffer.write(f.read(36))\n"
    rd = subprocess.Popen([PY, "-c", code, str(target), str(addr)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    # The agent keeps draining as it would in production; the bulk ring is small on purpose.
    while flood.poll() is None:
        m.poll(0.02)
    out, err = rd.communicate(timeout=60)
    reader = subprocess.CompletedProcess(rd.args, rd.returncode, out, err)
    assert flood.returncode == 0
    assert SECRET in reader.stdout
    (ev,) = mem_events(m, target, "proc_mem", pid=attacker_pid(reader))
    assert ev["target_comm"] == "Runner.Worker" and ev["severity"] == "critical"
    m.settle(0.3)
    summary = m.pipeline.loss_summary().to_json()
    bulk = summary["lanes"]["bulk"]
    net = [e for e in m.events if e["kind"] == "network" and e["dport"] == port]
    # The flood was seen, and every bulk loss is accounted for (ring-full drops match the
    # sequence gaps; in-kernel aggregation may fold identical connects into counted summaries).
    assert net, summary
    assert summary["uncounted_gaps"] == 0, summary
    # Every numbered bulk record was committed or counted as ring-full (a record or two of other
    # processes may be between numbering and commit while we read).
    assert 0 <= bulk["attempted"] - bulk["emitted"] - bulk["ring_full"] <= 2, summary
    # The critical lane's own accounting is exact too (its records are system-wide lifecycle
    # and memory events, so its volume depends on what else runs on the machine).
    crit = summary["lanes"]["critical"]
    assert crit["attempted"] == crit["received"] + crit["ring_full"], summary


# --------------------------------------------------------------------------- evasions
# procfs opens are decided on the opened proc inode (its struct pid), not on the path string.

SPELLINGS = {
    "double_slash": "open(f'/proc//{pid}/mem', 'rb').close()",
    "dot": "open(f'/proc/{pid}/./environ', 'rb').read()",
    "self_dotdot": "open(f'/proc/self/../{pid}/maps').read()",
    "chdir": "os.chdir(f'/proc/{pid}'); open('mem', 'rb').close()",
    "dirfd": "d = os.open(f'/proc/{pid}', os.O_RDONLY); os.close(os.open('environ', os.O_RDONLY, dir_fd=d))",
    "symlink": "import tempfile; l = tempfile.mktemp(); os.symlink(f'/proc/{pid}', l); "
               "open(l + '/mem', 'rb').close(); os.unlink(l)",
    "task_dir": "open(f'/proc/{pid}/task/{pid}/maps').read()",
}
TECH = {"double_slash": "proc_mem", "dot": "proc_environ", "self_dotdot": "proc_maps", "chdir": "proc_mem",
        "dirfd": "proc_environ", "symlink": "proc_mem", "task_dir": "proc_maps"}


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_proc_path_spellings(monitor, worker, spelling):
    target, _ = worker
    m = monitor()
    p = attack("import os, sys\npid = int(sys.argv[1])\n" + SPELLINGS[spelling], target, via_bash=False)
    assert p.returncode == 0, p.stderr
    (ev,) = mem_events(m, target, TECH[spelling], pid=attacker_pid(p))
    assert ev["target_comm"] == "Runner.Worker" and ev["severity"] == "critical"
    name = TECH[spelling].removeprefix("proc_")
    assert ev["path"].startswith("/proc/") and ev["path"].endswith("/" + name)


def test_pid_namespace_target_is_the_host_pid(monitor):
    """A reader inside a new pid namespace names its target by the namespace's pid; the event
    carries the host pid (the proc inode's struct pid, and bpf_task_from_vpid for syscalls)."""
    m = monitor()
    script = ("sleep 60 & S=$!; echo $S; "
              "while [ \"$(cat /proc/$S/comm)\" != sleep ]; do :; done; "   # exec'd: named sleep
              "cat /proc/$S/environ > /dev/null; "
              "python3 -c 'import ctypes,sys; l=ctypes.CDLL(None); "
              "print(l.process_vm_readv(int(sys.argv[1]),0,0,0,0,0))' $S; read x; kill $S")
    p = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ns_pid = int(p.stdout.readline())
        p.stdout.readline()
        def found() -> list[dict]:
            return [e for e in m.events if e["kind"] == "memory" and e["target_comm"] == "sleep"
                    and e["technique"] in ("proc_environ", "process_vm_readv")]

        m.wait_for(lambda e: len({x["technique"] for x in found()}) == 2)
        evs = found()
        assert {e["technique"] for e in evs} == {"proc_environ", "process_vm_readv"}
        for ev in evs:
            host = ev["target_pid"]
            assert host != ns_pid
            with open(f"/proc/{host}/status") as f:
                nspid = next(line.split()[1:] for line in f if line.startswith("NSpid:"))
            assert nspid == [str(host), str(ns_pid)]
    finally:
        p.communicate("\n", timeout=30)


def test_compat_ptrace_and_process_vm_readv(monitor, worker, tmp_path):
    target, addr = worker
    m = monitor()
    helper = tmp_path / "evade"
    subprocess.run(["gcc", "-O1", "-o", str(helper),
                    os.path.join(os.path.dirname(__file__), "helpers", "evade.c")], check=True)
    p = subprocess.run([str(helper), "ptrace32", str(target)], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    evs = m.wait_for(lambda e: e["kind"] == "memory" and e["target_pid"] == target
                     and e["technique"] == "ptrace" and e.get("origin") == "compat")
    assert evs and evs[0]["ptrace_request"] == 16 and evs[0]["target_comm"] == "Runner.Worker"
    assert evs[0]["severity"] == "critical" and evs[0]["comm"] == "evade"
    p = subprocess.run([str(helper), "vm_readv32", str(target), hex(addr)], capture_output=True)
    assert p.returncode == 0
    evs = m.wait_for(lambda e: e["kind"] == "memory" and e["target_pid"] == target
                     and e["technique"] == "process_vm_readv" and e.get("origin") == "compat")
    assert evs and evs[0]["severity"] == "critical"


def test_renamed_to_excluded_name_still_reported(monitor, worker):
    """exclude_processes names executables: a python that calls itself `dd` is still python."""
    from bee_trace.config import parse_config

    target, addr = worker
    m = monitor(config=parse_config("memory:\n  exclude_processes: [dd]\n", "x"))
    code = """
    import ctypes, sys
    ctypes.CDLL(None).prctl(15, b"dd", 0, 0, 0)
    f = open(f'/proc/{sys.argv[1]}/mem', 'rb'); f.seek(int(sys.argv[2])); f.read(8)
    """
    p = attack(code, target, addr, via_bash=False)
    (ev,) = mem_events(m, target, "proc_mem", pid=attacker_pid(p))
    assert ev["comm"] == "dd" and ev["severity"] == "critical" and ev["exe"].startswith("/")
    assert "python" in ev["exe"]


def test_process_inspectors_are_low(monitor):
    """ps reading every process's /proc entries is its job (root-owned system binary, by exe)."""
    m = monitor()
    p = subprocess.run(["ps", "eww", "-ef"], capture_output=True, timeout=30)
    assert p.returncode == 0
    m.settle(0.5)
    from_ps = [e for e in m.events if e["kind"] == "memory" and e["comm"] == "ps"]
    assert from_ps, "ps reads /proc/PID/environ of other processes"
    bad = [e for e in from_ps if e["severity"] in ("high", "critical")
           and e["target_comm"] not in ("Runner.Worker", "Runner.Listener", "sshd")]
    assert not bad, [(e["target_comm"], e["severity"], e["rule"]) for e in bad]
    # control: cat is no inspector
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        subprocess.run(["cat", f"/proc/{sleeper.pid}/environ"], capture_output=True, check=True)
        (ev,) = mem_events(m, sleeper.pid, "proc_environ", comm="cat")
        assert ev["severity"] == "high"
    finally:
        sleeper.kill()
        sleeper.wait()


WRITABLE_TARGET = """
import ctypes, sys
libc = ctypes.CDLL(None)
libc.prctl(15, b"Runner.Worker", 0, 0, 0)       # PR_SET_NAME
buf = ctypes.create_string_buffer(sys.argv[1].encode())
print(ctypes.addressof(buf), flush=True)
sys.stdin.readline()                             # the test says when the attacker is done
print(buf.value.decode(), flush=True)
"""

VM_WRITEV = """
import ctypes, os, sys, threading
pid, addr = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
data = ctypes.create_string_buffer(b'OVERWRITTEN-BY-ATTACKER')
def write(label):
    local, remote = iovec(ctypes.addressof(data), 24), iovec(addr, 24)
    n = libc.process_vm_writev(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    print(f'{label} tid={threading.get_native_id()} n={n} errno={ctypes.get_errno()}', flush=True)
# From a second thread (tid != pid), as root: succeeds.
t = threading.Thread(target=write, args=('root',)); t.start(); t.join()
# Then as uid 65534: refused with EPERM, reported all the same (the attempt is the finding).
os.setresuid(65534, 65534, 65534)
write('nobody')
"""


def test_process_vm_writev_from_a_thread_and_as_another_uid(monitor):
    worker = subprocess.Popen([PY, "-c", WRITABLE_TARGET, SECRET.decode()], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        target, addr = worker.pid, int(worker.stdout.readline())
        m = monitor({"memory_monitor"})
        p = attack(VM_WRITEV, target, addr)
        lines = dict(line.split(" ", 1) for line in p.stdout.decode().splitlines())
        root_tid = int(lines["root"].split()[0].removeprefix("tid="))
        assert lines["root"].endswith("n=24 errno=0"), p.stdout
        assert lines["nobody"].endswith("n=-1 errno=1"), p.stdout      # EPERM
        out, _ = worker.communicate("done\n", timeout=30)
        assert out.strip() == "OVERWRITTEN-BY-ATTACKER"               # the write really landed
        pid = attacker_pid(p)
        evs = m.wait_for_n(lambda e: e["kind"] == "memory" and e["pid"] == pid, 2)
        assert len(evs) == 2, evs
        by_uid = {e["uid"]: e for e in evs}
        assert set(by_uid) == {0, 65534}
        assert by_uid[0]["tid"] == root_tid and root_tid != pid
        assert by_uid[65534]["tid"] == pid
        for ev in evs:
            check_attack_event(ev, target)
            assert ev["pid"] == pid and ev["rule"] == "memory.protected.process_vm_writev"
        # Only these two: the readv next door is not reported as writev and nothing else leaked.
        assert [e["technique"] for e in m.events if e["kind"] == "memory" and e["pid"] == pid] == \
            ["process_vm_writev"] * 2
    finally:
        worker.kill()
        worker.wait()


HOLDER = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None)
libc.prctl(15, b"Runner.Worker", 0, 0, 0)       # PR_SET_NAME
mfd = os.memfd_create("secrets")
os.write(mfd, sys.argv[1].encode())
r, w = os.pipe()
os.write(w, b"job log line\\n")
print(mfd, r, flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder():
    """A Runner.Worker holding a secret in a memfd and a pipe: reachable only through
    /proc/PID/fd/N."""
    p = subprocess.Popen([PY, "-c", HOLDER, SECRET.decode()], stdout=subprocess.PIPE, text=True)
    mfd, rfd = map(int, p.stdout.readline().split())
    yield p.pid, mfd, rfd
    p.kill()
    p.wait()


def test_proc_fd_of_another_process(monitor, holder):
    """Reading a Runner.Worker's memfd through /proc/PID/fd/N (cat follows the link: the
    kernel opens the memfd itself), listing its fds, and an O_PATH grab reopened through
    /proc/self/fd: each is proc_fd aimed at the worker."""
    target, mfd, rfd = holder
    m = monitor()
    cat = subprocess.run(["cat", f"/proc/{target}/fd/{mfd}"], capture_output=True, timeout=30)
    assert cat.stdout == SECRET
    ls = subprocess.Popen(["ls", f"/proc/{target}/fd"], stdout=subprocess.DEVNULL)
    ls.wait(timeout=30)
    code = """
    import os, sys
    fd = os.open(f'/proc/{sys.argv[1]}/fd/{sys.argv[2]}', os.O_PATH)
    print(os.read(os.open(f'/proc/self/fd/{fd}', os.O_RDONLY), 64))
    """
    grab = attack(code, target, mfd, via_bash=False)
    assert SECRET in grab.stdout
    evs = mem_events(m, target, "proc_fd")
    m.wait_for(lambda e: e.get("pid") == attacker_pid(grab) and e["kind"] == "memory")
    evs = [e for e in m.events if e["kind"] == "memory" and e["technique"] == "proc_fd"
           and e["target_pid"] == target]
    by_pid = {e["pid"]: e for e in evs}
    read = by_pid[_pid_of(m, "cat", target)]
    assert read["path"] == f"/proc/{target}/fd/{mfd}" and read["access"] == "read"
    assert read["target_comm"] == "Runner.Worker" and read["severity"] == "critical"
    listing = by_pid[ls.pid]
    assert listing["path"] == f"/proc/{target}/fd" and listing["severity"] == "critical"
    grabbed = by_pid[attacker_pid(grab)]
    assert grabbed["path"] == f"/proc/{target}/fd/{mfd}"
    # the reopen through /proc/self/fd reads a file the grabber already holds: nothing new
    assert [e["path"] for e in evs if e["pid"] == attacker_pid(grab)] == [grabbed["path"]]


def _pid_of(m, comm: str, target: int) -> int:
    (ev,) = [e for e in m.events if e["kind"] == "memory" and e["comm"] == comm
             and e["target_pid"] == target and e["technique"] == "proc_fd"]
    return ev["pid"]


def test_proc_fd_pipe_and_benign_reopens(monitor, holder, tmp_path):
    """A process substitution (/dev/fd/63), /dev/stdin on a pipe and an O_TMPFILE file reopened
    through /proc/self/fd are the opener's own files: no event. Reading the worker's pipe is."""
    target, _, rfd = holder
    m = monitor()
    benign = subprocess.Popen(
        ["bash", "-c", "cat <(echo sub) >/dev/null; echo in | cat /dev/stdin >/dev/null; "
         f"exec {PY} -c \"import os; fd = os.open('{tmp_path}', os.O_TMPFILE | os.O_RDWR); "
         "os.write(fd, b'x'); os.close(os.open(f'/proc/self/fd/{fd}', os.O_RDONLY))\""])
    assert benign.wait(timeout=30) == 0
    reader = subprocess.Popen(["dd", f"if=/proc/{target}/fd/{rfd}", "bs=13", "count=1",
                               "status=none"], stdout=subprocess.PIPE)
    assert reader.communicate(timeout=30)[0] == b"job log line\n"
    (ev,) = mem_events(m, target, "proc_fd", pid=reader.pid)
    assert ev["path"] == f"/proc/{target}/fd/{rfd}" and ev["comm"] == "dd"
    # bash -c (then exec'd python) and its cat children
    assert [e for e in m.events if e["kind"] == "memory" and benign.pid in (e["pid"], e["ppid"])] == []
