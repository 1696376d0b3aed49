"""The emulator's HTTPS: a generated CA and certificates for localhost, and the server SSL context.

``EmulatorTLS()`` with no files generates (once per data dir) ``<data-dir>/tls/ca.pem``, a
server certificate for ``localhost``, ``127.0.0.1`` and ``::1`` signed by it, and a client
certificate for mutual-TLS tries; later runs reuse them while they are valid, so a CA
trusted once stays trusted. ``cert_file``/``key_file`` serve a given pair instead;
``client_ca_file`` makes the server require client certificates signed by that CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["EmulatorTLS", "TLSFiles", "TLSSetupError", "ensure_generated", "issue_certificate"]

_VALID_DAYS = 365
_NAMES = ("localhost",)
_ADDRESSES = ("127.0.0.1", "::1")


class TLSSetupError(ValueError):
    """A certificate, key or client CA file is missing or not PEM."""


@dataclass(frozen=True)
class TLSFiles:
    """Paths of the generated PEM files."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server-key.pem"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.folder / "client-key.pem"


def _write(path: Path, data: bytes, *, private: bool) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_certificate(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate signed by the CA: for localhost (server) or a client."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=_VALID_DAYS - 1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in _NAMES]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in _ADDRESSES]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _still_valid(files: TLSFiles) -> bool:
    paths = (files.ca, files.ca_key, files.server_cert, files.server_key)
    if not all(p.is_file() for p in paths):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    except ValueError:
        return False
    return cert.not_valid_after_utc > _now() + datetime.timedelta(days=1)


def ensure_generated(folder: Path) -> TLSFiles:
    """Generate the CA, server and client certificates under ``folder`` unless still valid."""
    files = TLSFiles(folder)
    if _still_valid(files):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _make_ca("kore-models emulator local CA")
    server_cert, server_key = issue_certificate(ca_cert, ca_key, "localhost", server=True)
    client_cert, client_key = issue_certificate(
        ca_cert, ca_key, "kore-models emulator client", server=False
    )
    pem = serialization.Encoding.PEM
    _write(files.ca_key, _key_pem(ca_key), private=True)
    _write(files.server_key, _key_pem(server_key), private=True)
    _write(files.client_key, _key_pem(client_key), private=True)
    _write(files.server_cert, server_cert.public_bytes(pem), private=False)
    _write(files.client_cert, client_cert.public_bytes(pem), private=False)
    _write(files.ca, ca_cert.public_bytes(pem), private=False)
    return files


@dataclass(frozen=True)
class EmulatorTLS:
    """How the emulator serves HTTPS: generated files (the default) or a given pair."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None

    def prepare(self, data_dir: Path) -> tuple[ssl.SSLContext, Path | None]:
        """The server context, and the CA file clients should trust (None for a given pair)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        ca_file: Path | None = None
        cert, key = self.cert_file, self.key_file
        if cert is None:
            files = ensure_generated(data_dir / "tls")
            cert, key, ca_file = files.server_cert, files.server_key, files.ca
        try:
            context.load_cert_chain(cert, key)
            if self.client_ca_file is not None:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(cafile=str(self.client_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise TLSSetupError(
                f"cannot serve TLS with {cert}, {key}"
                + (f" and client CA {self.client_ca_file}" if self.client_ca_file else "")
                + f": {exc}; give PEM files"
            ) from None
        return context, ca_file
