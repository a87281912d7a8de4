import re

import pytest

from bee_trace.globs import GlobError, GlobSet, compile_glob


def m(pattern: str, path: str) -> bool:
    return compile_glob(pattern).match(path) is not None


@pytest.mark.parametrize(
    "pattern,path",
    [
        ("**/.ssh/id_*", "/home/u/.ssh/id_rsa"),
        ("**/.ssh/id_*", ".ssh/id_rsa"),
        ("/tmp/**", "/tmp/a/b"),
        ("/tmp/**", "/tmp/a"),
        (".env.*", "/x/.env.local"),
        (".env", "/srv/app/.env"),
        ("id_rsa", "id_rsa"),  # relative path, zero leading components
        ("id_rsa", "/id_rsa"),
        ("**/id_rsa", "/a/b/c/d/id_rsa"),
        ("*.pem", "/etc/ssl/private/server.pem"),
        (".aws/credentials", "/root/.aws/credentials"),
        ("a/**/b", "/q/a/b"),
        ("a/**/b", "/q/a/x/y/b"),
        ("/etc/shadow", "/etc/shadow"),
        ("/etc/**/x", "/etc/x"),
        ("file?.txt", "/d/file1.txt"),
        ("key[0-9]", "/d/key7"),
        ("key[!0-9]", "/d/keyx"),
        ("[]x]", "/d/]"),
        ("**", "/anything/at/all"),
        ("**/.config/gcloud/*credentials*", "/h/.config/gcloud/application_default_credentials.json"),
        ("a\\*b", "/d/a*b"),
        ("**/.git/**", "/repo/.git/objects/ab/cd"),
        ("/tmp/**", "/tmp/we\nird/x"),  # newline in a hostile name still matches
    ],
)
def test_matches(pattern: str, path: str) -> None:
    assert m(pattern, path)


@pytest.mark.parametrize(
    "pattern,path",
    [
        ("**/.ssh/id_*", "/home/u/.ssh/x/id_rsa"),
        ("/tmp/**", "/tmp"),
        ("/tmp/**", "/tmpx/a"),
        (".env.*", "/x/.envrc"),
        (".env", "/x/.env.local"),
        ("*.pem", "/d/x.pem/inner"),
        ("id_rsa", "/d/id_rsa.pub"),
        ("id_rsa", "/d/xid_rsa"),
        ("/etc/shadow", "/x/etc/shadow"),
        ("file?.txt", "/d/file12.txt"),
        ("file?.txt", "/d/file/.txt"),
        ("key[0-9]", "/d/keyx"),
        ("key[!0-9]", "/d/key1"),
        ("key[!0-9]", "/d/key/"),
        ("a*b", "/d/a/b"),  # * never crosses '/'
        ("[+-0]", "/"),  # a class range that spans '/' still never matches it
        ("a\\*b", "/d/axxb"),
        ("a/**/b", "/q/a/bc"),
    ],
)
def test_non_matches(pattern: str, path: str) -> None:
    assert not m(pattern, path)


def test_double_slash_is_normalised_by_globset() -> None:
    assert GlobSet(["**/.ssh/id_*"]).match("/home/u//.ssh/id_rsa") == "**/.ssh/id_*"


def test_globset_returns_first_matching_pattern_in_order() -> None:
    gs = GlobSet(["**/*.key", "**/private.key", "**/id_*"])
    assert gs.match("/x/private.key") == "**/*.key"
    assert gs.match("/x/id_rsa") == "**/id_*"
    assert gs.match("/x/other") is None
    assert "/x/id_rsa" in gs
    assert len(gs) == 3


def test_empty_globset_matches_nothing() -> None:
    gs = GlobSet([])
    assert not gs
    assert gs.match("/anything") is None
    assert gs.match("") is None


def test_empty_pattern_is_an_error() -> None:
    with pytest.raises(GlobError):
        compile_glob("")


def test_unclosed_bracket_is_literal() -> None:
    assert m("a[b", "/d/a[b")
    assert not m("a[b", "/d/ab")


def test_many_patterns_match_quickly_and_correctly() -> None:
    pats = [f"**/secret{i}.txt" for i in range(500)]
    gs = GlobSet(pats)
    assert gs.match("/a/b/secret499.txt") == "**/secret499.txt"
    assert gs.match("/a/b/secret500.txt") is None


def test_globset_index_agrees_with_trying_every_pattern_in_order() -> None:
    """The literal-key index only skips patterns that cannot match: the first match is the same
    as trying each pattern's regex in order, for keyed, unkeyed and escaped patterns."""
    import random

    from bee_trace.config import default_config
    from bee_trace.globs import GlobSet, compile_glob

    cfg = default_config()
    pats = list(cfg.files.watch_read) + list(cfg.files.exclude_paths) + [
        "**/.git/**", "a*b", "*.tar.gz", "/opt/*/conf", "**/x?z", "[ab]*", "**/*[0-9]",
        "pre*", "**/dir/*", "\\*lit", "**/we\\?rd/*", "**", "/etc/**", "nested/**/deep.txt"]
    rng = random.Random(7)
    names = ["id_rsa", ".env", ".env.local", "x.pem", "a.key", "config", "credentials", "prefoo",
             "axb", "q.tar.gz", "xyz", "b1", "deep.txt", "*lit", "k", "", "conf", "f.crt"]
    dirs = ["", "home", "u", ".ssh", ".aws", ".azure", ".git", "dir", "we?rd", "nested", "opt",
            "etc", "gcloud", ".config", "node_modules"]
    gs = GlobSet(pats)
    regexes = [compile_glob(p) for p in pats]
    for _ in range(3000):
        path = "/".join(rng.choice(dirs) for _ in range(rng.randint(0, 4))) + "/" + rng.choice(names)
        if rng.random() < 0.7:
            path = "/" + path.lstrip("/")
        norm = re.sub(r"/{2,}", "/", path)
        want = next((p for p, r in zip(pats, regexes) if r.match(norm)), None)
        assert gs.match(path) == want, path


def test_globset_prefilters_agree_with_regexes_on_random_globs() -> None:
    """Literal keys and required-literal prefilters only skip patterns that cannot match, also
    for awkward globs: classes holding ']' or '!', escapes, '**' inside components."""
    import random
    import warnings

    from bee_trace.globs import GlobSet, compile_glob

    rng = random.Random(2)
    tokens = list("ab.-_") + ["*", "?", "[ab]", "[!a]", "**", "/", "\\*", "[", "]", "[]a]", "[!]b]"]
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # re: "possible set difference" in classes
        for _ in range(1500):
            pats = ["".join(rng.choice(tokens) for _ in range(rng.randint(1, 8))) for _ in range(5)]
            try:
                regexes = [compile_glob(p) for p in pats]
            except re.error:  # a reversed range such as [b-a]: config validation refuses it
                continue
            gs = GlobSet(pats)
            for _ in range(20):
                path = "/".join("".join(rng.choice("ab.-_*[]") for _ in range(rng.randint(0, 4)))
                                for _ in range(rng.randint(1, 4)))
                if not path:
                    continue
                norm = re.sub(r"/{2,}", "/", path)
                want = next((p for p, r in zip(pats, regexes) if r.match(norm)), None)
                assert gs.match(path) == want, (pats, path)
                checked += 1
    assert checked > 20000


def test_simple_string_tests_agree_with_regexes() -> None:
    """simple_test's shapes (`**/name`, `**/*.ext`, `**/dir/**`, `/abs`, `/abs/**`) decide as
    the pattern's regex does, on paths made of the same pieces."""
    import random

    from bee_trace.globs import compile_glob, simple_test

    rng = random.Random(5)
    tokens = ["a", "b", ".", "*", "**", "/", "ab", "/**", "**/", "/a/"]
    used = 0
    for _ in range(4000):
        pat = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 6)))
        test = simple_test(pat)
        if test is None:
            continue
        used += 1
        regex = compile_glob(pat)
        for _ in range(20):
            path = "/".join(rng.choice(["a", "b", "ab", ".a", "a.b", "", "**"])
                            for _ in range(rng.randint(1, 5)))
            norm = re.sub(r"/{2,}", "/", path)
            assert test(norm) == (regex.match(norm) is not None), (pat, norm)
    assert used > 1000



def test_globgroup_gives_each_sets_own_first_match() -> None:
    """One index over several sets answers as each set's match() does, for the policy's sets
    (the group confirmation and classification use) and for random globs."""
    import random

    from bee_trace.classify import file_patterns
    from bee_trace.config import default_config
    from bee_trace.globs import GlobGroup, GlobSet

    rng = random.Random(11)
    group = file_patterns(default_config().files)
    dirs = ["", "home", "u", ".ssh", ".aws", ".azure", ".git", "etc", "ssl", "certs", "gcloud",
            ".config", "node_modules", "certifi", "proc"]
    names = ["id_rsa", "id_rsa.pub", ".env", ".env.local", "x.pem", "a.key", "credentials",
             "known_hosts", "cacert.pem", "config", "f.crt", "token.json", "k"]
    for _ in range(3000):
        path = "/" + "/".join(rng.choice(dirs) for _ in range(rng.randint(0, 4))) + "/" + rng.choice(names)
        assert group.match(path) == tuple(gs.match(path) for gs in group.sets), path
    tokens = list("ab.-_") + ["*", "?", "[ab]", "**", "/", "\\*"]
    for _ in range(300):
        sets = [GlobSet(["".join(rng.choice(tokens) for _ in range(rng.randint(1, 6)))
                         for _ in range(rng.randint(0, 4))]) for _ in range(3)]
        g = GlobGroup(sets)
        for _ in range(20):
            path = "/".join("".join(rng.choice("ab.-_*") for _ in range(rng.randint(0, 3)))
                            for _ in range(rng.randint(1, 4)))
            assert g.match(path) == tuple(gs.match(path) for gs in sets), (path, sets)


def test_key_index_candidates_include_every_matching_pattern() -> None:
    """The index may leave a pattern out only when it cannot match, including the keyless ones
    (`**/dir/**`, `/abs/**`), which are candidates only of paths showing one of their literal
    components."""
    import random

    from bee_trace.globs import KeyIndex, compile_glob

    rng = random.Random(23)
    tokens = list("ab.") + ["*", "?", "[ab]", "**", "/", "/**", "**/", "/a/"]
    checked = 0
    for _ in range(1500):
        pats = ["".join(rng.choice(tokens) for _ in range(rng.randint(1, 6))) for _ in range(6)]
        try:
            regexes = [compile_glob(p) for p in pats]
        except (re.error, ValueError):
            continue
        index = KeyIndex(pats)
        for _ in range(20):
            path = "/" + "/".join(rng.choice(["a", "b", "ab", ".a", "a.b", "b.a"])
                                  for _ in range(rng.randint(1, 5)))
            want = {i for i, r in enumerate(regexes) if r.match(path)}
            assert want <= set(index.candidates(path)), (pats, path)
            checked += len(want)
    assert checked > 1000
    # Shapes of the default policy: each keyless pattern by its longest literal component.
    index = KeyIndex(["**/.git/**", "/etc/ssl/certs/**", "**/*.pem", "**/*/**"])
    assert sorted(index.candidates("/w/repo/.git/x.pem")) == [0, 2, 3]
    assert sorted(index.candidates("/etc/ssl/certs/x.pem")) == [1, 2, 3]
    assert sorted(index.candidates("/w/repo/x.pem")) == [2, 3]
