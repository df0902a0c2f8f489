"""The inventory's trust stores: an unusable one is bad input naming the file, the field and what is wrong.

A store the scanner cannot use must never pass as "no extra anchors" (every chain under it would be
reported untrusted in a run marked complete). PKI is made at run time; nothing secret is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from collectors.certificates import read_extra_anchors
from soc.inventory import InventoryError, load_inventory, trust_store_problem

INVENTORY = """\
agencies: [{id: stp, name: Sở Tư pháp}]
portals: [{url: "https://stp.dongnai.gov.vn/", agency: stp, address: 127.0.10.1}]
settings:
  allowed_networks: ["127.0.0.0/8"]
  trust_stores: [%s]
"""


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def expired_root() -> bytes:
    """A self-signed root that expired a year ago: still an anchor (expiry is judged on the chain, not here)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Expired Government Root")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now - timedelta(days=800)).not_valid_after(now - timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM)


def corrupt(pem: bytes) -> bytes:
    """A CERTIFICATE block whose base64 decodes to something that is not a certificate."""
    lines = pem.splitlines(keepends=True)
    return b"".join([lines[0], b"MIIBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", lines[-1]])


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def inventory(tmp_path: Path, *stores: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY % ", ".join(f'"{store}"' for store in stores), encoding="utf-8")
    return path


def test_usable_stores_pass(tmp_path: Path, ca: trustme.CA) -> None:
    root = ca.cert_pem.bytes()
    comment = "# Kho tin cậy bổ sung — CA chuyên dùng Chính phủ\n".encode()
    stores = [write(tmp_path, "root.pem", root),
              write(tmp_path, "bundle.pem", comment + root + expired_root()),
              write(tmp_path, "expired-only.pem", expired_root()),
              write(tmp_path, "cert-and-key.pem", root + ca.private_key_pem.bytes())]
    assert [trust_store_problem(store) for store in stores] == [None] * 4
    assert load_inventory(inventory(tmp_path, *stores)).settings.trust_stores == stores


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda ca: b"", "empty file: no CA certificate in it"),
        (lambda ca: b"this is not a certificate\n", "not a PEM file: no '-----BEGIN …-----' block"),
        (lambda ca: x509.load_pem_x509_certificate(ca.cert_pem.bytes()).public_bytes(Encoding.DER),
         "it looks like DER"),
        (lambda ca: ca.private_key_pem.bytes(), "no X.509 certificate in it (only "),
        (lambda ca: corrupt(ca.cert_pem.bytes()), "certificate 1 (line 1) is not a valid X.509 certificate"),
        (lambda ca: ca.cert_pem.bytes() + corrupt(ca.cert_pem.bytes()), "certificate 2 (line "),
    ],
    ids=["empty", "garbage", "der", "key-only", "corrupt", "one-good-one-corrupt"],
)
def test_unusable_store_is_named_with_what_is_wrong(
    tmp_path: Path, ca: trustme.CA, make: Callable[[trustme.CA], bytes], said: str
) -> None:
    store = write(tmp_path, "store.pem", make(ca))
    problem = trust_store_problem(store)
    assert problem is not None and said in problem
    with pytest.raises(InventoryError) as caught:
        load_inventory(inventory(tmp_path, store))
    assert caught.value.problems == [f"inventory.yaml: settings.trust_stores[0]: {problem}: {store}"]
    assert read_extra_anchors([store]).errors  # the collector refuses exactly what the inventory refuses


def test_key_only_store_says_what_it_holds(tmp_path: Path, ca: trustme.CA) -> None:
    problem = trust_store_problem(write(tmp_path, "key.pem", ca.private_key_pem.bytes()))
    assert problem is not None and "PRIVATE KEY" in problem


def test_unreadable_and_non_file_stores(tmp_path: Path) -> None:
    # /proc/self/mem is a regular file that refuses to be read from its start (even for root: EIO).
    assert trust_store_problem(Path("/proc/self/mem")) == "cannot be read (Input/output error)"
    assert trust_store_problem(tmp_path) == "not a regular file"
    assert trust_store_problem(tmp_path / "missing.pem") == "file not found"


def test_every_unusable_store_is_listed(tmp_path: Path, ca: trustme.CA) -> None:
    good = write(tmp_path, "good.pem", ca.cert_pem.bytes())
    garbage = write(tmp_path, "garbage.pem", b"garbage")
    key = write(tmp_path, "key.pem", ca.private_key_pem.bytes())
    with pytest.raises(InventoryError) as caught:
        load_inventory(inventory(tmp_path, good, garbage, tmp_path / "missing.pem", key))
    problems = caught.value.problems
    assert [p.split(": ")[1] for p in problems] == ["settings.trust_stores[1]", "settings.trust_stores[2]",
                                                  "settings.trust_stores[3]"]
    assert problems[0].endswith(f": {garbage}") and problems[1] == (
        f"inventory.yaml: settings.trust_stores[2]: file not found: {tmp_path / 'missing.pem'}")
    assert str(key) in problems[2] and "no X.509 certificate" in problems[2]


def test_collector_reads_what_it_can_and_names_the_rest(tmp_path: Path, ca: trustme.CA) -> None:
    """A store that went bad after the inventory was checked: named, never fatal to the TLS collector."""
    good = write(tmp_path, "good.pem", ca.cert_pem.bytes())
    gone = tmp_path / "gone.pem"
    extra = read_extra_anchors([good, write(tmp_path, "garbage.pem", b"garbage"), gone])
    assert [cert.subject for cert in extra.certificates] == [
        x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject]
    assert extra.pem == ca.cert_pem.bytes().strip() + b"\n"
    assert len(extra.errors) == 2
    assert "garbage.pem unusable: ValueError" in extra.errors[0] and "gone.pem unusable: FileNotFoundError" in (
        extra.errors[1])
