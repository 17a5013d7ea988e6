"""The API beyond this machine: a host other than loopback is refused in one line unless it is
served over TLS (hypercorn's, from the operator's certificate and key) or plain HTTP is asked
for with ``--insecure-http`` (warned of at every start). Real engine processes; the certificate
is made by the test, self-signed for 127.0.0.1.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from engine.app.config import ConfigError, parse_config
from tests.engine.engine_process import run_for_a_second, start_engine, stop_engine

EXPOSED = "0.0.0.0"  # every address of the machine


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key (0600), made here by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (nor is the cryptography package)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def _trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("where", ["command line", "config"])
def test_a_host_beyond_loopback_without_tls_is_refused(tmp_path: Path, where: str) -> None:
    data = tmp_path / "data"
    if where == "command line":
        result = run_for_a_second(data, "--host", EXPOSED)
    else:
        config = tmp_path / "engine.toml"
        config.write_text(f'[api]\nhost = "{EXPOSED}"\n')
        result = run_for_a_second(data, "--config", str(config))
    assert result.returncode == 2, result.stderr
    line = _last_line(result)
    assert line.startswith(f"api.host '{EXPOSED}' is not a loopback address"), line
    assert "--tls-cert FILE --tls-key FILE" in line and "--insecure-http" in line, line
    assert '"engine started"' not in result.stderr
    assert not (data / "api.url").exists()


def test_the_api_is_served_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    data = tmp_path / "data"
    err = tmp_path / "err.txt"
    engine = start_engine(
        data, "--host", EXPOSED, "--tls-cert", str(cert), "--tls-key", str(key), stderr=err
    )
    try:
        assert engine.url.startswith("https://"), engine.url
        port = engine.url.rsplit(":", 1)[1]
        auth = {"Authorization": f"Bearer {engine.token}"}
        with httpx.Client(verify=_trusting(cert), headers=auth, timeout=10) as https:
            status = https.get(f"https://127.0.0.1:{port}/api/status")
            assert status.status_code == 200
            assert status.json()["stopping"] is False
        with httpx.Client(headers=auth, timeout=10) as plain, pytest.raises(httpx.HTTPError):
            plain.get(f"http://127.0.0.1:{port}/api/status")  # no plain HTTP on that port
        with httpx.Client(timeout=10) as unverified, pytest.raises(httpx.ConnectError):
            unverified.get(f"https://127.0.0.1:{port}/api/status")  # not a trusted certificate
    finally:
        assert stop_engine(engine) == 0
    started = [line for line in err.read_text().splitlines() if '"engine started"' in line]
    assert f'"api": "https://{EXPOSED}:{port}"' in started[0]
    assert "plain http" not in err.read_text()


def test_tls_from_the_config_file(tmp_path: Path) -> None:
    _self_signed(tmp_path)
    config = tmp_path / "engine.toml"
    config.write_text(
        f'[api]\nhost = "{EXPOSED}"\ntls_cert = "cert.pem"\ntls_key = "key.pem"\n'
    )  # relative to the file's folder
    engine = start_engine(tmp_path / "data", "--config", str(config))
    try:
        port = engine.url.rsplit(":", 1)[1]
        auth = {"Authorization": f"Bearer {engine.token}"}
        trusting = _trusting(tmp_path / "cert.pem")
        with httpx.Client(verify=trusting, headers=auth, timeout=10) as https:
            assert https.get(f"https://localhost:{port}/api/accounts").status_code == 200
    finally:
        assert stop_engine(engine) == 0


def test_plain_http_beyond_loopback_is_warned_of_at_every_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "engine.toml"
    config.write_text(f'[api]\nhost = "{EXPOSED}"\ninsecure_http = true\n')
    for extra in (("--host", EXPOSED, "--insecure-http"), ("--config", str(config))):
        result = run_for_a_second(data, *extra)
        assert result.returncode == 0, result.stderr
        warnings = [
            line
            for line in result.stderr.splitlines()
            if '"level": "warning"' in line and "served over plain http" in line
        ]
        assert len(warnings) == 1, result.stderr
        assert f'"host": "{EXPOSED}"' in warnings[0]


def test_loopback_needs_nothing_more(tmp_path: Path) -> None:
    result = run_for_a_second(tmp_path / "data", "--host", "127.0.0.1")
    assert result.returncode == 0, result.stderr
    assert "plain http" not in result.stderr


def test_unusable_tls_files_are_one_line(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    data = tmp_path / "data"
    alone = run_for_a_second(data, "--host", EXPOSED, "--tls-cert", str(cert))
    assert alone.returncode == 2
    assert "--tls-cert and --tls-key" in _last_line(alone)

    wrong = tmp_path / "wrong.pem"
    wrong.write_text("not a key\n")
    wrong.chmod(0o600)
    mismatched = run_for_a_second(data, "--tls-cert", str(cert), "--tls-key", str(wrong))
    assert mismatched.returncode == 2
    line = _last_line(mismatched)
    assert line.startswith(f"TLS: cannot use {cert} with {wrong}: "), line
    assert "expected a PEM certificate chain and its PEM private key" in line

    key.chmod(0o644)
    readable = run_for_a_second(data, "--tls-cert", str(cert), "--tls-key", str(key))
    assert readable.returncode == 2
    assert _last_line(readable) == f"TLS: {key}: the private key is readable by anyone (chmod 600)"


def test_a_certificate_without_its_key_in_the_config_is_named() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"api": {"tls_cert": "cert.pem"}}, "engine.toml")
    assert raised.value.errors == [
        "api.tls_key: expected a file with api.tls_cert (the certificate and its key: both,"
        " or neither)"
    ]
