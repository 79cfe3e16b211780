"""`rollout analyze`'s provider credentials: Secret manifests, KEY=VALUE files and environment
variables, read for the Secret a template names, and never quoted back."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from rollout.cli.provider_secrets import ProvidedSecrets, SecretFileError, parse_argument, read_secret_file
from rollout.engine.sources import SourceError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_secret_manifest_in_yaml_or_json_and_key_value_lines(tmp_path: Path) -> None:
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text(f"apiVersion: v1\nkind: Secret\nmetadata: {{name: dd}}\n"
                         f"data: {{datadog_api_key: {b64('k1')}}}\nstringData: {{datadog_application_key: k2}}\n")
    assert read_secret_file(yaml_file) == {"datadog_api_key": "k1", "datadog_application_key": "k2"}
    json_file = tmp_path / "s.json"
    json_file.write_text(json.dumps({"apiVersion": "v1", "kind": "Secret", "data": {"token": b64("t")}}))
    assert read_secret_file(json_file) == {"token": "t"}
    pairs = tmp_path / "s.env"
    pairs.write_text("# prom\nusername = u\npassword=p=q\n\n")
    assert read_secret_file(pairs) == {"username": "u", "password": "p=q"}


def test_unreadable_files_are_said_without_their_values(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Secret\ndata: {token: not-base64-s3cret!}\n")
    with pytest.raises(SecretFileError) as e:
        read_secret_file(bad)
    assert "s3cret" not in str(e.value) and "key token of the Secret's data is not base64" in str(e.value)
    loose = tmp_path / "loose.txt"
    loose.write_text("hunter2\n")
    with pytest.raises(SecretFileError) as e:
        read_secret_file(loose)
    assert "hunter2" not in str(e.value) and "line 1 is not KEY=VALUE" in str(e.value)
    with pytest.raises(SecretFileError):
        read_secret_file(tmp_path / "missing")
    with pytest.raises(SecretFileError):
        parse_argument("prom-auth")
    assert parse_argument("apps/prom-auth=/x=y") == ("apps/prom-auth", Path("/x=y"))


def test_files_by_name_or_namespace_then_the_environment(tmp_path: Path) -> None:
    general, scoped = tmp_path / "general.env", tmp_path / "scoped.env"
    general.write_text("token=general\n")
    scoped.write_text("token=scoped\n")
    secrets = ProvidedSecrets({"auth": general, "apps/auth": scoped},
                              {"ROLLOUT_SECRET_DD_CREDS_DATADOG_API_KEY": "k", "ROLLOUT_SECRET_OTHER_TOKEN": "x"})
    assert secrets("apps", "auth") == {"token": "scoped"}
    assert secrets("web", "auth") == {"token": "general"}
    assert secrets("web", "dd-creds") == {"datadog_api_key": "k"}
    with pytest.raises(SourceError) as e:
        secrets("web", "none")
    assert str(e.value) == ("no credentials for Secret web/none (provider.secretRef): pass --provider-secret "
                            "none=FILE (a Secret manifest or KEY=VALUE lines) or set ROLLOUT_SECRET_NONE_<KEY>")
