"""TLS on listeners marked `tls`: curl with the CA, with the wrong CA
and against an expired certificate; TLS 1.1 refused; a renewed
certificate served after a reload; a plain and a TLS listener side by
side; the configuration checks.  Certificates are made here with
python3-cryptography."""
import datetime
import os
import signal
import socket
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import DATACHATD, free_port, wait_for

NOW = datetime.datetime.now(datetime.timezone.utc)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn="datachatd test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server(ca, cn="localhost", days=(-1, 30)):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name(cn))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW + datetime.timedelta(days=days[0]))
            .not_valid_after(NOW + datetime.timedelta(days=days[1]))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def write_pair(d, pair, cert_name="cert.pem", key_name="key.pem"):
    key, cert = pair
    cp, kp = os.path.join(d, cert_name), os.path.join(d, key_name)
    with open(cp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(kp, 0o600)
    return cp, kp


def write_ca(d, ca, fname="ca.pem"):
    p = os.path.join(d, fname)
    with open(p, "wb") as f:
        f.write(ca[1].public_bytes(serialization.Encoding.PEM))
    return p


def curl(url, *opts):
    return subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                           "--max-time", "10"] + list(opts) + [url],
                          capture_output=True, text=True, timeout=30)


def tls_daemon(daemon_factory, tmp_path, pair, extra_listen=None):
    cp, kp = write_pair(str(tmp_path), pair)
    d = daemon_factory(workers=2, conf={"tls_cert_file": cp, "tls_key_file": kp})
    d.tls_port = free_port()
    d.settings["listen"] = "127.0.0.1:%d" % d.port
    d.write_conf('listen = "127.0.0.1:%d tls"\n' % d.tls_port)
    d.cert_path, d.key_path = cp, kp
    return d.start()


def peer_cert(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return x509.load_der_x509_certificate(t.getpeercert(True))


def test_tls_with_the_ca_and_without(daemon_factory, tmp_path):
    ca = make_ca()
    d = tls_daemon(daemon_factory, tmp_path, make_server(ca))
    cafile = write_ca(str(tmp_path), ca)
    url = "https://localhost:%d/api/v1/health" % d.tls_port
    r = curl(url, "--cacert", cafile)
    assert r.stdout == "200", r.stderr
    # the same over keep-alive, a request with a body, and HEAD
    r = subprocess.run(["curl", "-sS", "--cacert", cafile, "-w", " %{http_code}",
                        url, "-X", "POST", "-H", "Content-Type: application/json",
                        "-d", "{}", "https://localhost:%d/api/v1/chat" % d.tls_port],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.endswith(" 422") or r.stdout.endswith(" 400"), r.stdout
    r = curl(url, "--cacert", cafile, "-I")
    assert r.stdout == "200"
    # another CA: the client refuses the server
    other = write_ca(str(tmp_path), make_ca("someone else"), "other.pem")
    r = curl(url, "--cacert", other)
    assert r.returncode == 60 and r.stdout == "000", r.stderr
    # plain HTTP on the TLS port gets no answer from the routes
    r = curl("http://127.0.0.1:%d/api/v1/health" % d.tls_port)
    assert r.stdout != "200"
    # the head scan reads the decrypted stream: smuggling refused here too
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", d.tls_port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\n"
                      b"Content-Length: 2\r\nContent-Length: 9\r\n\r\n{}"
                      b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while True:
                chunk = t.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 400"), data[:100]
            assert data.count(b"HTTP/1.1") == 1, "nothing behind it answered"
    # the plain listener beside it is unaffected
    assert curl("http://127.0.0.1:%d/api/v1/health" % d.port).stdout == "200"
    assert d.get("/api/v1/health").status_code == 200


def test_expired_certificate_is_refused_by_the_client(daemon_factory, tmp_path):
    ca = make_ca()
    d = tls_daemon(daemon_factory, tmp_path, make_server(ca, days=(-20, -1)))
    cafile = write_ca(str(tmp_path), ca)
    r = curl("https://localhost:%d/api/v1/health" % d.tls_port, "--cacert", cafile)
    assert r.returncode == 60 and "expired" in r.stderr, r.stderr


def test_tls_1_1_is_refused(daemon_factory, tmp_path):
    ca = make_ca()
    d = tls_daemon(daemon_factory, tmp_path, make_server(ca))
    cafile = write_ca(str(tmp_path), ca)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", d.tls_port), timeout=10) as s:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(s, server_hostname="localhost")
    # 1.2 is enough
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("DEFAULT")
    with socket.create_connection(("127.0.0.1", d.tls_port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            assert t.version() == "TLSv1.2"


def test_reload_serves_a_renewed_certificate(daemon_factory, tmp_path):
    ca = make_ca()
    first = make_server(ca)
    d = tls_daemon(daemon_factory, tmp_path, first)
    cafile = write_ca(str(tmp_path), ca)
    assert peer_cert(d.tls_port, cafile).serial_number == first[1].serial_number
    renewed = make_server(ca, cn="localhost renewed")
    write_pair(str(tmp_path), renewed)
    old = d.workers()
    d.send(signal.SIGHUP)
    wait_for(lambda: peer_cert(d.tls_port, cafile).serial_number ==
             renewed[1].serial_number, timeout=10, what="the renewed cert")
    # a key that does not match: the reload is refused, the cert stays
    _, other_key = write_pair(str(tmp_path), make_server(ca), "x.pem", "key.pem")
    d.send(signal.SIGHUP)
    wait_for(lambda: "keeping the running configuration" in d.log(), timeout=10,
             what="the refused reload")
    assert "tls_key_file" in d.log()
    assert peer_cert(d.tls_port, cafile).serial_number == renewed[1].serial_number
    # the first reload's old workers leave once their connections are done
    wait_for(lambda: set(d.workers()) & set(old) == set(), timeout=30,
             what="new workers serve it")


def test_tls_configuration_checks(tmp_path):
    ca = make_ca()
    cp, kp = write_pair(str(tmp_path), make_server(ca))
    port = free_port()

    def check(lines):
        path = os.path.join(str(tmp_path), "t.conf")
        with open(path, "w") as f:
            f.write(lines)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LLM_", "DATABASE_", "SYSTEM_DATABASE"))}
        return subprocess.run([DATACHATD, "-t", "-c", path], capture_output=True,
                              text=True, env=env, timeout=30)
    r = check('listen = "127.0.0.1:%d tls"\n' % port)
    assert r.returncode == 1 and "needs tls_cert_file and tls_key_file" in r.stderr
    r = check('listen = "/tmp/x.sock tls"\n')
    assert r.returncode == 1 and "TCP listeners only" in r.stderr
    ok = 'listen = "127.0.0.1:%d tls"\ntls_cert_file = %s\ntls_key_file = %s\n' % (
        port, cp, kp)
    r = check(ok)
    assert r.returncode == 0 and "load and match" in r.stdout, r.stderr
    os.chmod(kp, 0o644)
    r = check(ok)
    assert r.returncode == 1 and "make it mode 600" in r.stderr
    os.chmod(kp, 0o600)
    with open(cp, "w") as f:
        f.write("not a certificate\n")
    r = check(ok)
    assert r.returncode == 1 and "tls_cert_file" in r.stderr
