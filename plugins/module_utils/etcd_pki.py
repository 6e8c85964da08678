# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""etcd PKI: a cluster CA and the certificates it signs, issued only when needed.

Pure logic on PEM text (no file system access) so it is unit-tested without a host;
the module ``smcp.platform.etcd_certs`` does the reading and writing.
Works with python3-cryptography >= 3.4 (Debian bookworm ships 38).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

except ImportError as exc:  # pragma: no cover - reported by the module
    CRYPTOGRAPHY_IMPORT_ERROR: ImportError | None = exc
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

# What a certificate is used for. Peer and server certificates are presented on both
# sides of a TLS connection by etcd (members dial each other; the gRPC gateway dials
# the member itself), so they carry server and client auth.
USAGES = ("peer", "server", "client")


class PkiError(Exception):
    """Invalid input (bad PEM, key not matching the certificate, bad SAN)."""


@dataclass
class CertSpec:
    """A certificate to issue: ``name`` is the file stem, ``sans`` DNS names and IPs mixed."""

    name: str
    common_name: str
    usage: str
    sans: list[str] = field(default_factory=list)
    organization: str = ""

    def validate(self) -> None:
        if self.usage not in USAGES:
            raise PkiError(f"certs[{self.name}].usage={self.usage!r} is not one of {', '.join(USAGES)}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise PkiError(f"certs name {self.name!r} must be a plain file name (no '/', not hidden)")
        if self.usage != "client" and not self.sans:
            raise PkiError(f"certs[{self.name}] is a {self.usage} certificate and needs at least one SAN")


@dataclass
class Issued:
    cert_pem: str
    key_pem: str


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def not_after(cert: x509.Certificate) -> datetime.datetime:
    """Expiry as an aware UTC datetime on old and new cryptography versions."""
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return value


def split_sans(sans: list[str]) -> tuple[set[str], set[str]]:
    """Return (dns names, normalised IP addresses) of a mixed SAN list."""
    dns: set[str] = set()
    ips: set[str] = set()
    for raw in sans:
        value = str(raw).strip()
        if not value:
            continue
        try:
            ips.add(str(ipaddress.ip_address(value)))
        except ValueError:
            if " " in value or "/" in value:
                raise PkiError(f"SAN {value!r} is neither an IP address nor a DNS name") from None
            dns.add(value.lower())
    return dns, ips


def cert_sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    dns = {name.lower() for name in ext.get_values_for_type(x509.DNSName)}
    ips = {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    return dns, ips


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def cert_to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_cert(pem: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise PkiError(f"{what} is not a PEM certificate: {exc}") from None


def load_key(pem: str, what: str):
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        # Never echo the key: only say what is wrong with it.
        raise PkiError(f"{what} is not an unencrypted PEM private key ({type(exc).__name__})") from None


def _public_bytes(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches_cert(key, cert: x509.Certificate) -> bool:
    return _public_bytes(key.public_key()) == _public_bytes(cert.public_key())


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True when ``ca``'s key signed ``cert`` (EC and RSA CAs)."""
    if cert.issuer != ca.subject:
        return False
    public = ca.public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        else:
            return False
    except Exception:  # InvalidSignature and unsupported algorithms alike
        return False
    return True


# Key usages no certificate here has.
_NEVER_USED = dict.fromkeys(
    ("content_commitment", "data_encipherment", "key_agreement", "encipher_only", "decipher_only"), False
)


def _builder(subject, issuer, public_key, now: datetime.datetime, expiry: datetime.datetime, ca: bool):
    """What a CA and a leaf certificate share: names, key, serial, validity, basic constraints, key usage.

    A CA signs certificates (key_cert_sign, crl_sign, path length 0); a leaf enciphers keys.
    """
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(expiry)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=not ca, key_cert_sign=ca, crl_sign=ca, **_NEVER_USED
            ),
            critical=True,
        )
    )


def new_ca(common_name: str, days: int) -> Issued:
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        _builder(name, name, key.public_key(), now, now + datetime.timedelta(days=days), ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert_to_pem(cert), key_to_pem(key))


def issue(spec: CertSpec, ca_cert: x509.Certificate, ca_key, days: int) -> Issued:
    spec.validate()
    key = new_key()
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)]
    if spec.organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.organization))
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if spec.usage != "client":
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    now = _now()
    expiry = min(now + datetime.timedelta(days=days), not_after(ca_cert))
    builder = (
        _builder(x509.Name(attrs), ca_cert.subject, key.public_key(), now, expiry, ca=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
    )
    dns, ips = split_sans(spec.sans)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in sorted(dns)]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in sorted(ips)]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert_to_pem(cert), key_to_pem(key))


def reissue_reason(
    spec: CertSpec,
    cert_pem: str | None,
    key_pem: str | None,
    ca_cert: x509.Certificate,
    renew_days: int,
    now: datetime.datetime | None = None,
) -> str | None:
    """Why the stored certificate must be issued again, or None when it is still good.

    Reasons: missing, unreadable, key mismatch, other CA, expiring within
    ``renew_days``, different SANs, different subject.
    """
    if not cert_pem or not key_pem:
        return "missing"
    try:
        cert = load_cert(cert_pem, spec.name)
        key = load_key(key_pem, spec.name)
    except PkiError:
        return "unreadable"
    if not key_matches_cert(key, cert):
        return "key does not match certificate"
    if not signed_by(cert, ca_cert):
        return "signed by another CA"
    now = now or _now()
    if not_after(cert) - now < datetime.timedelta(days=renew_days):
        return f"expires within {renew_days} days"
    if cert_sans(cert) != split_sans(spec.sans):
        return "SANs changed"
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns or cns[0].value != spec.common_name:
        return "common name changed"
    return None


def ca_reason(
    cert_pem: str | None, key_pem: str | None, renew_days: int, now: datetime.datetime | None = None
) -> str | None:
    """Why a stored CA is unusable (None when usable). A CA is never rotated silently."""
    if not cert_pem or not key_pem:
        return "missing"
    cert = load_cert(cert_pem, "CA certificate")
    key = load_key(key_pem, "CA key")
    if not key_matches_cert(key, cert):
        raise PkiError("the CA key does not match the CA certificate: supply the matching pair")
    now = now or _now()
    if not_after(cert) <= now:
        raise PkiError(f"the CA certificate expired on {not_after(cert).isoformat()}: supply a new CA")
    if not_after(cert) - now < datetime.timedelta(days=renew_days):
        return f"expires within {renew_days} days"
    return None
