"""Fernet interoperability between datachatd and Python.

The registry's credentials are Fernet tokens that the old Python service
wrote with cryptography.fernet and that datachatd must read (and the other
way round during a migration).  These tests drive tests/fernet_tool, a thin
command line face of src/fernet.c, against cryptography.fernet in both
directions, including key rotation with MultiFernet.

The tool is looked up in $DC_BUILDDIR/tests (default: the source tree).
Keys are never put into assertion messages.
"""

import os
import subprocess

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(os.environ.get("DC_BUILDDIR", REPO_ROOT), "tests",
                    "fernet_tool")
KEY_ENV = "DATABASE_CREDENTIALS_KEY"

PLAINTEXTS = [
    b"",
    b"hello",
    b"postgresql://user:p%40ss@db.example:5432/app",
    b"x" * 15,
    b"y" * 16,
    b"z" * 17,
    "unicode: \u00e9\u4e2d\u6587 \U0001F600".encode("utf-8"),
    bytes(range(256)),
    os.urandom(5000),
]


@pytest.fixture(scope="module", autouse=True)
def tool_built():
    if not os.access(TOOL, os.X_OK):
        pytest.fail("fernet_tool not built at %s (run make, or set "
                    "DC_BUILDDIR)" % TOOL)


class Result:
    """A finished run.  Its repr (which pytest prints when an assertion
    fails) leaves out stdout, which holds a key after genkey."""

    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def __repr__(self):
        return "Result(returncode=%d)" % self.returncode


def run_tool(cmd, data=b"", keys=None):
    """Run the tool; keys is the key list text or None to leave it unset."""
    env = dict(os.environ)
    env.pop(KEY_ENV, None)
    if keys is not None:
        env[KEY_ENV] = keys
    return Result(subprocess.run([TOOL, cmd], input=data, env=env,
                                 capture_output=True, timeout=30))


def tool_encrypt(keys, plaintext):
    proc = run_tool("encrypt", plaintext, keys)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    token = proc.stdout
    assert token.endswith(b"\n")
    return token.strip()


def tool_decrypt(keys, token):
    return run_tool("decrypt", token + b"\n", keys)


def new_key():
    return Fernet.generate_key()


@pytest.mark.parametrize("plaintext", PLAINTEXTS,
                         ids=lambda p: "len%d" % len(p))
def test_python_encrypts_tool_decrypts(plaintext):
    key = new_key()
    token = Fernet(key).encrypt(plaintext)
    proc = tool_decrypt(key.decode(), token)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == plaintext


@pytest.mark.parametrize("plaintext", PLAINTEXTS,
                         ids=lambda p: "len%d" % len(p))
def test_tool_encrypts_python_decrypts(plaintext):
    key = new_key()
    token = tool_encrypt(key.decode(), plaintext)
    got = Fernet(key).decrypt(token)
    assert got == plaintext
    # Python checks the timestamp too: the tool writes the current time.
    got = Fernet(key).decrypt(token, ttl=120)
    assert got == plaintext


def test_token_without_trailing_newline():
    key = new_key()
    token = Fernet(key).encrypt(b"no newline")
    proc = run_tool("decrypt", token, key.decode())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == b"no newline"


def test_rotation_tool_old_first_python_multifernet():
    old, new = new_key(), new_key()
    token = tool_encrypt(old.decode() + "," + new.decode(), b"rotate me")
    # The first key of the tool's list encrypted it ...
    got = Fernet(old).decrypt(token)
    assert got == b"rotate me"
    with pytest.raises(InvalidToken):
        Fernet(new).decrypt(token)
    # ... and Python's rotated ring still reads it.
    ring = MultiFernet([Fernet(new), Fernet(old)])
    got = ring.decrypt(token)
    assert got == b"rotate me"
    # Python rotates it to the new key; the tool reads that with new only.
    rotated = ring.rotate(token)
    proc = tool_decrypt(new.decode(), rotated)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == b"rotate me"


def test_rotation_python_old_tool_new_first():
    old, new = new_key(), new_key()
    token = Fernet(old).encrypt(b"written before rotation")
    proc = tool_decrypt(new.decode() + "," + old.decode(), token)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == b"written before rotation"
    # Without the old key the token is unreadable.
    proc = tool_decrypt(new.decode(), token)
    assert proc.returncode == 1
    assert b"invalid token" in proc.stderr


def test_multifernet_both_ways_encrypts_with_first():
    k1, k2, k3 = new_key(), new_key(), new_key()
    ring = MultiFernet([Fernet(k1), Fernet(k2), Fernet(k3)])
    keys = "\n".join(k.decode() for k in (k1, k2, k3)) + "\n"

    # Python's MultiFernet encrypts with k1: the tool with k1 alone reads it.
    token = ring.encrypt(b"py ring")
    proc = tool_decrypt(k1.decode(), token)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == b"py ring"

    # The tool's ring (newline separated) encrypts with k1 too.
    token = tool_encrypt(keys, b"c ring")
    got = Fernet(k1).decrypt(token)
    assert got == b"c ring"
    got = ring.decrypt(token)
    assert got == b"c ring"

    # Tokens from any key of the ring open in the tool.
    for k in (k1, k2, k3):
        token = Fernet(k).encrypt(b"any key")
        proc = tool_decrypt(" , ".join(x.decode() for x in (k1, k2, k3)),
                            token)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert proc.stdout == b"any key"


def test_tampered_token_fails_in_tool():
    key = new_key()
    token = Fernet(key).encrypt(b"do not touch")
    mid = len(token) // 2
    flipped = b"A" if token[mid:mid + 1] != b"A" else b"B"
    tampered = token[:mid] + flipped + token[mid + 1:]
    with pytest.raises(InvalidToken):
        Fernet(key).decrypt(tampered)

    for bad in (tampered, token[:-4], token + b"AAAA",
                token.replace(b"-", b"+").replace(b"_", b"/") + b"!",
                b"", b"not a token"):
        proc = tool_decrypt(key.decode(), bad)
        assert proc.returncode == 1
        assert proc.stdout == b""
        assert proc.stderr.strip() == b"invalid token"


def test_wrong_key_fails_in_tool():
    token = Fernet(new_key()).encrypt(b"someone else's")
    proc = tool_decrypt(new_key().decode(), token)
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert proc.stderr.strip() == b"invalid token"


def test_tool_genkey_works_in_python():
    proc = run_tool("genkey")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    key = proc.stdout.strip()
    key_ok = len(key) == 44 and proc.stdout.endswith(b"\n")
    assert key_ok, "genkey output is not one 44-character line"

    token = Fernet(key).encrypt(b"tool key, python token")
    proc = tool_decrypt(key.decode(), token)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == b"tool key, python token"

    token = tool_encrypt(key.decode(), b"tool key, tool token")
    got = Fernet(key).decrypt(token)
    assert got == b"tool key, tool token"

    other = run_tool("genkey").stdout.strip()
    differ = other != key
    assert differ, "two genkey runs gave the same key"


def test_bad_key_list_is_refused_without_echoing_it():
    good = new_key().decode()
    bad = good[:-2] + "+="   # standard alphabet
    for keys in ("", " , ", bad, good + "," + bad, good[:-1]):
        proc = run_tool("encrypt", b"x", keys)
        assert proc.returncode != 0
        assert proc.stdout == b""
        leaked = (good[:20].encode() in proc.stderr or
                  bad[:20].encode() in proc.stderr)
        assert not leaked, "the tool echoed key text"
    proc = run_tool("encrypt", b"x", None)
    assert proc.returncode != 0
    assert KEY_ENV.encode() in proc.stderr
