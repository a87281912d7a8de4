"""The candidate filter must be a superset of the exact globs (no false negatives ever)."""

from __future__ import annotations

import random

from bee_trace import patterns
from bee_trace import records as R
from bee_trace.config import default_config
from bee_trace.globs import GlobSet

SAMPLE_PATHS = [
    b"/home/u/.ssh/id_rsa", b"id_rsa", b"/x/.env", b"/x/.env.local", b"/x/y.pem", b"a.key",
    b"/home/u/.aws/credentials", b"/home/u/.config/gcloud/application_default_credentials.json",
    b"/home/u/.azure/accessTokens.json", b"/home/u/.kube/config", b"/etc/shadow",
    b"/srv/service-account-prod.json", b"/etc/ssh/ssh_host_ed25519_key", b"/k/store.jks",
    b"/k/AuthKey.p8", b"/k/db.kdbx", b"/home/u/.ssh/id_ed25519", b"/home/u/.docker/config.json",
    b"/r/.git-credentials", b"/r/.npmrc", b"/r/.pypirc", b"/root/.netrc", b"/root/.vault-token",
    b"/r/secrets.yaml", b"/r/private.key", b"/r/c.p12", b"/r/c.pfx", b"/r/c.crt", b"/r/c.cer",
    b"/r/c.der", b"/home/u/.ssh/authorized_keys", b"/r/kubeconfig", b"/r/credentials.json",
    b"/" + b"d" * 290 + b"/id_rsa",
]


def test_every_default_pattern_has_a_kernel_key_or_is_match_all() -> None:
    cfg = default_config()
    for pattern in cfg.files.watch_read + cfg.files.watch_write:
        key = patterns.kernel_key(pattern)
        assert key.kind != 0, f"{pattern} would disable the kernel filter"


def test_filter_is_superset_of_exact_globs() -> None:
    cfg = default_config()
    globs = list(cfg.files.watch_read) + list(cfg.files.watch_write)
    filt = patterns.build_filter(globs)
    exact = GlobSet(globs)
    for path in SAMPLE_PATHS:
        assert exact.match(path.decode()), f"sample {path!r} should match a default glob"
        assert patterns.is_candidate(filt, path), f"kernel filter would miss {path!r}"


def test_filter_rejects_ordinary_paths() -> None:
    cfg = default_config()
    filt = patterns.build_filter(list(cfg.files.watch_read) + list(cfg.files.watch_write))
    for path in [b"/etc/hostname", b"/usr/lib/x86_64-linux-gnu/libc.so.6", b"/proc/self/stat",
                 b"/home/u/project/main.py", b"/etc/passwd", b"/usr/share/zoneinfo/UTC"]:
        assert not patterns.is_candidate(filt, path), path


def test_superset_holds_for_random_globs() -> None:
    rng = random.Random(7)
    words = ["id", "key", "cred", "token", "env", "secret", "conf"]
    exts = ["pem", "key", "p8", "json", "yaml", "kdbx"]
    globs, paths = [], []
    for i in range(300):
        w, e = rng.choice(words), rng.choice(exts)
        form = i % 4
        if form == 0:
            globs.append(f"**/{w}{i}.{e}")
            paths.append(f"/a/b/{w}{i}.{e}")
        elif form == 1:
            globs.append(f"**/*.{e}{i}")
            paths.append(f"/q/x.{e}{i}")
        elif form == 2:
            globs.append(f"**/{w}{i}_*")
            paths.append(f"/q/{w}{i}_zz")
        else:
            globs.append(f"**/.{w}{i}/*")
            paths.append(f"/h/.{w}{i}/anything")
    filt = patterns.build_filter(globs)
    exact = GlobSet(globs)
    for p in paths:
        assert exact.match(p)
        assert patterns.is_candidate(filt, p.encode()), p


def test_filter_false_positive_rate_stays_low_with_1000_patterns() -> None:
    globs = [f"**/secret-{i}.key{i}" for i in range(1000)]
    filt = patterns.build_filter(globs)
    hits = sum(patterns.is_candidate(filt, f"/usr/lib/file{i}.so".encode()) for i in range(2000))
    assert hits < 2000 * 0.05


def test_match_all_only_without_literal_key() -> None:
    assert patterns.kernel_key("**/*").kind == 0
    assert patterns.kernel_key("/secrets/**").kind == 0
    assert patterns.kernel_key("**/.azure/*").kind == R.KEY_DIR
    assert patterns.kernel_key("**/*.pem").kind == R.KEY_SUFFIX + 4
    assert patterns.kernel_key("**/.env.*").kind == R.KEY_PREFIX + 5
