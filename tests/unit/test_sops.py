"""SOPS decryption (rollout.gitops.sops) of files that SOPS itself encrypted, with real age keys.

Each test writes its plaintext, has the real `sops --encrypt` encrypt it to a fresh age recipient,
and checks that the operator's reader gets the plaintext back, or refuses the file (MAC, key,
tampering) with a message that names the file's problem and never a value.
"""

from __future__ import annotations

import pytest
import yaml

from rollout.gitops.sops import DecryptError, Keys, decrypt_text
from tests.sopsfiles import age_key, encrypt, secret_yaml

PLAIN = """apiVersion: v1
kind: Secret
metadata:
  name: db
  labels:
    tier: "3"
  annotations:
    note_unencrypted: visible
type: Opaque
stringData:
  password: hunter2-s3cr3t
  port: 5432
  ratio: 1.5
  big: 100.0
  flag: true
  empty: ""
  hosts: [a.example, 2, null]
"""


@pytest.fixture(scope="module")
def key() -> tuple[Keys, str]:
    identity, recipient = age_key()
    return Keys.from_secret({"age.agekey": f"# made for the test\n{identity}\n"}, "ns/sops-age"), recipient


def test_a_secret_encrypted_by_sops_reads_back_as_its_plaintext(key: tuple[Keys, str]) -> None:
    keys, recipient = key
    text = encrypt(PLAIN, recipient)
    assert "hunter2-s3cr3t" not in text and "ENC[AES256_GCM" in text
    assert decrypt_text(text, keys) == [yaml.safe_load(PLAIN)]


@pytest.mark.parametrize("args", [(), ("--mac-only-encrypted",), ("--unencrypted-regex", "^(metadata|kind)$"),
                                  ("--encrypted-suffix", "word")])
def test_every_rule_of_what_is_encrypted_and_several_documents(key: tuple[Keys, str], args: tuple[str, ...]) -> None:
    keys, recipient = key
    plain = PLAIN + "---\n" + secret_yaml("other", {"token": "t0ken", "password": "second"})
    assert decrypt_text(encrypt(plain, recipient, args=args), keys) == list(yaml.safe_load_all(plain))


def test_any_of_several_recipients_opens_it() -> None:
    _, first = age_key()
    identity, second = age_key()
    keys = Keys.from_secret({"b.agekey": identity, "not-a-key": "ignored"}, "ns/s")
    assert decrypt_text(encrypt(PLAIN, first, second), keys) == [yaml.safe_load(PLAIN)]


def test_a_file_changed_after_encryption_is_refused_by_its_mac(key: tuple[Keys, str]) -> None:
    keys, recipient = key
    text = encrypt(PLAIN, recipient)
    with pytest.raises(DecryptError, match="MAC does not match"):
        decrypt_text(text.replace("name: db", "name: dc"), keys)
    # an encrypted value moved to another key does not decrypt (its path is authenticated data)
    doc = yaml.safe_load(text)
    moved = text.replace(doc["stringData"]["password"], doc["stringData"]["port"], 1)
    with pytest.raises(DecryptError, match=r"stringData\.password does not decrypt") as e:
        decrypt_text(moved, keys)
    assert "5432" not in str(e.value)
    # the MAC itself cannot be swapped for another file's
    other = encrypt(PLAIN.replace("hunter2", "hunter3"), recipient)
    spliced = text.split("sops:")[0] + "sops:" + other.split("sops:")[1]
    with pytest.raises(DecryptError):
        decrypt_text(spliced, keys)


def test_no_matching_key_names_the_recipients_and_no_value(key: tuple[Keys, str]) -> None:
    _, recipient = key
    other_identity, _ = age_key()
    with pytest.raises(DecryptError, match=f"none of the decryption Secret's age identities opens it.*{recipient}") \
            as e:
        decrypt_text(encrypt(PLAIN, recipient), Keys.from_secret({"x.agekey": other_identity}, "ns/s"))
    assert "hunter2" not in str(e.value)
    with pytest.raises(DecryptError, match=r"set spec\.decryption"):
        decrypt_text(encrypt(PLAIN, recipient), None)


def test_plain_files_are_left_to_the_plain_reader(key: tuple[Keys, str]) -> None:
    keys, _ = key
    assert decrypt_text(PLAIN, keys) is None
    assert decrypt_text("a: [unclosed", keys) is None
    assert decrypt_text(PLAIN, keys, originals=lambda: []) is None


def test_kustomize_output_is_matched_to_the_encrypted_file_it_came_from(key: tuple[Keys, str]) -> None:
    """`kubectl kustomize` sorts keys, which the MAC covers: the built document is decrypted as the
    file it is exactly a copy of, and one that kustomize changed is refused."""
    keys, recipient = key
    encrypted = encrypt(PLAIN, recipient)
    other = encrypt(secret_yaml("unrelated", {"k": "v"}), age_key()[1])  # another key: never opened
    built = yaml.safe_dump(yaml.safe_load(encrypted), sort_keys=True)
    assert built.index("sops:") < built.index("stringData:")  # reordered, as kustomize does
    with pytest.raises(DecryptError, match="MAC does not match"):
        decrypt_text(built, keys)  # read as a file of its own, the order breaks the MAC
    plain_cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  on: yes\n"
    # the ConfigMap reads as before (PyYAML's YAML 1.1); the Secret is decrypted
    assert decrypt_text(plain_cm + "---\n" + built, keys, originals=lambda: [other, encrypted]) == [
        yaml.safe_load(plain_cm), yaml.safe_load(PLAIN)]
    moved = yaml.safe_load(encrypted)
    moved["metadata"]["namespace"] = "prod"  # a namespace transformer
    with pytest.raises(DecryptError, match="the encrypted Secret 'db' that kustomize built is not as in any SOPS"):
        decrypt_text(yaml.safe_dump(moved), keys, originals=lambda: [encrypted])


def test_secrets_without_an_age_identity_are_refused() -> None:
    with pytest.raises(DecryptError, match="has no age identity"):
        Keys.from_secret({"identity": "x"}, "ns/s")
    with pytest.raises(DecryptError, match=r"line 2 of key 'a\.agekey'") as e:
        Keys.from_secret({"a.agekey": "# comment\nAGE-SECRET-KEY-NOT-REALLY\n"}, "ns/s")
    assert "NOT-REALLY" not in str(e.value)
