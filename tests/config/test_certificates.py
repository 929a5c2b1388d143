"""PKCS#12 certificates (docs/semantics.md §2): each way a .pfx can be unusable is its own typed error."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from config_examples import DOC_EXAMPLE
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from enate_routing import load_config, load_pkcs12
from enate_routing._cli import main
from enate_routing.errors import (
    CertificateError,
    CertificateExpiredError,
    CertificateKeyMissingError,
    CertificateNotYetValidError,
    CertificatePasswordError,
    ConfigError,
)

PASSWORD = "pfx-Secret-42"
NOW = dt.datetime.now(dt.UTC)


def make_pfx(
    *, not_before: dt.datetime = NOW - dt.timedelta(days=1), not_after: dt.datetime = NOW + dt.timedelta(days=30),
    with_key: bool = True, password: str = PASSWORD,
) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay-client.test")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password.encode())
    if with_key:
        return pkcs12.serialize_key_and_certificates(b"relay", key, cert, None, encryption)
    return pkcs12.serialize_key_and_certificates(b"relay", None, None, [cert], encryption)


def test_valid_certificate_loads() -> None:
    """A valid .pfx with the right password gives its subject and validity, and no key in the repr."""
    cert = load_pkcs12(make_pfx(), PASSWORD)
    assert "relay-client.test" in cert.subject
    assert cert.not_before < NOW < cert.not_after
    assert "PRIVATE" not in repr(cert)
    pem = cert.encrypted_pem(b"one-time")
    assert b"ENCRYPTED PRIVATE KEY" in pem and b"BEGIN CERTIFICATE" in pem


@pytest.mark.parametrize(
    ("pfx", "password", "error"),
    [
        (make_pfx(), "wrong-password", CertificatePasswordError),
        (b"not a pfx at all", PASSWORD, CertificatePasswordError),
        (make_pfx(with_key=False), PASSWORD, CertificateKeyMissingError),
        (make_pfx(not_before=NOW - dt.timedelta(days=60), not_after=NOW - dt.timedelta(days=1)), PASSWORD,
         CertificateExpiredError),
        (make_pfx(not_before=NOW + dt.timedelta(days=2), not_after=NOW + dt.timedelta(days=60)), PASSWORD,
         CertificateNotYetValidError),
    ],
    ids=["wrong-password", "not-pkcs12", "no-private-key", "expired", "not-yet-valid"],
)
def test_unusable_certificate_has_its_own_error(pfx: bytes, password: str, error: type[CertificateError]) -> None:
    """Wrong password, no key, expired, not yet valid: each raises its own CertificateError, without the password."""
    with pytest.raises(error) as caught:
        load_pkcs12(pfx, password, where="connector 'Relay'")
    assert "connector 'Relay'" in str(caught.value)
    assert password not in str(caught.value)


def test_missing_file_is_a_certificate_error(tmp_path: Path) -> None:
    """A certificate path that does not exist names the file."""
    with pytest.raises(CertificateError, match=r"missing\.pfx"):
        load_pkcs12(tmp_path / "missing.pfx", PASSWORD)


def relay_config(pfx_name: str, password_line: str) -> str:
    return DOC_EXAMPLE.replace(
        'outgoing = { host = "acme-example.mail.protection.outlook.com", auth = "none" }',
        f'outgoing = {{ host = "acme-example.mail.protection.outlook.com", auth = "certificate" }}\n'
        f'certificate = "{pfx_name}"\n{password_line}',
    )


def test_config_checks_certificate_at_load(
    write_config: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """load_config and check open the .pfx relative to the file and report a wrong password as a clear line."""
    (tmp_path / "relay.pfx").write_bytes(make_pfx())
    good = write_config(relay_config("relay.pfx", 'certificate_password_env = "RELAY_PFX"'))
    config = load_config(good, environ={"RELAY_PFX": PASSWORD})
    assert config.connector("Relay").certificate == "relay.pfx"
    bad = write_config(relay_config("relay.pfx", 'certificate_password = "not-it"'), "bad.toml")
    with pytest.raises(CertificatePasswordError, match="connector 'Relay'"):
        load_config(bad)
    assert main(["check", "--config", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert f"error: {bad}: connector 'Relay': certificate_password: wrong certificate password" in out
    assert "not-it" not in out + err and "Traceback" not in err


def check_json(capsys: pytest.CaptureFixture[str], config: Path, environ: dict[str, str],
               monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[str, Any]]:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code = main(["check", str(config), "--format", "json"])
    out = capsys.readouterr().out
    assert PASSWORD not in out
    return code, json.loads(out)


def test_check_without_the_production_certificate_warns(write_config: Callable[[str], Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """CI holds neither the .pfx nor its password: `check` cannot test the certificate, says so as a warning and
    goes on with every other check (exit 0; --strict fails). `load_config`, which `poll` uses, still refuses."""
    monkeypatch.delenv("RELAY_PFX", raising=False)
    config = write_config(relay_config("relay.pfx", 'certificate_password_env = "RELAY_PFX"'))
    code, report = check_json(capsys, config, {}, monkeypatch)
    assert (code, report["valid"], report["errors"]) == (0, True, [])
    (warning,) = report["warnings"]
    assert (warning["code"], warning["where"], warning["field"], warning["item"]) == (
        "certificate-unchecked", "connector 'Relay'", "certificate", "relay.pfx")
    assert warning["problem"].startswith(f"the certificate file is not here ({tmp_path / 'relay.pfx'})")
    assert main(["check", str(config), "--strict"]) == 1
    capsys.readouterr()
    with pytest.raises(ConfigError, match="RELAY_PFX"):
        load_config(config)
    (tmp_path / "relay.pfx").write_bytes(make_pfx())  # the file is there, its password is not
    code, report = check_json(capsys, config, {}, monkeypatch)
    assert code == 0 and "password variable RELAY_PFX is not set here" in report["warnings"][0]["problem"]
    code, report = check_json(capsys, config, {"RELAY_PFX": PASSWORD}, monkeypatch)
    assert (code, report["errors"], report["warnings"]) == (0, [], [])


def test_check_reports_an_unusable_certificate_as_an_error(write_config: Callable[[str], Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """With the file and its password at hand, an expired certificate (or a CA file that is not PEM) is an
    error located at its connector and field, in loading's words, beside the other findings."""
    expired = NOW - dt.timedelta(days=1)
    (tmp_path / "relay.pfx").write_bytes(make_pfx(not_before=expired - dt.timedelta(days=60), not_after=expired))
    (tmp_path / "ca.pem").write_text("not a bundle", encoding="utf-8")
    text = relay_config("relay.pfx", 'certificate_password_env = "RELAY_PFX"').replace(
        'auth = "certificate" }', 'auth = "certificate", ca_file = "ca.pem" }')
    code, report = check_json(capsys, write_config(text), {"RELAY_PFX": PASSWORD}, monkeypatch)
    assert code == 1 and report["valid"] is True
    assert [(e["code"], e["where"], e["field"]) for e in report["errors"]] == [
        ("certificate-invalid", "connector 'Relay'", "outgoing.ca_file"),
        ("certificate-invalid", "connector 'Relay'", "certificate")]
    assert "expired" in report["errors"][1]["problem"]
