"""A throwaway certificate authority for TLS between test servers on 127.0.0.1.

Made with ``cryptography``; nothing is added to the machine's trust store.
``make_test_ca(folder)`` writes ``ca.pem`` and a server certificate for
``127.0.0.1``/``localhost`` (``server.pem``, ``server.key``), plus ``cadir/``
holding the CA under its OpenSSL subject hash (``<hash>.0``), the layout
``X509_CERT_DIR`` expects. Each CA has a name of its own, so several can
share one such folder (:func:`trust_in_this_process`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CAFiles:
    """Paths of the CA certificate, its hashed folder and the server certificate and key."""

    ca: Path
    cadir: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mlaas4hep tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def make_test_ca(folder: Path) -> CAFiles:
    """Write a CA and a server certificate for 127.0.0.1 valid for one day into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"mlaas4hep test CA {secrets.token_hex(4)}")
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name)
               .issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start)
               .not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                            False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = CAFiles(ca=folder / "ca.pem", cadir=folder / "cadir", cert=folder / "server.pem",
                   key=folder / "server.key")
    paths.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths.key, key)
    paths.cadir.mkdir(exist_ok=True)
    subject_hash = subprocess.run(["openssl", "x509", "-noout", "-subject_hash", "-in",
                                   str(paths.ca)], capture_output=True, text=True,
                                  check=True).stdout.strip()
    (paths.cadir / f"{subject_hash}.0").write_bytes(paths.ca.read_bytes())
    return paths


def trust_in_this_process(ca: CAFiles) -> None:
    """Make XRootD clients in this process trust ``ca``.

    The client reads ``$X509_CERT_DIR`` once, at the process's first connection, so the
    test session points it at a folder of its own before any test runs (``conftest.py``);
    this copies ``ca``'s hashed certificate there.
    """
    folder = Path(os.environ["X509_CERT_DIR"])
    for cert in ca.cadir.iterdir():
        shutil.copy(cert, folder / cert.name)
