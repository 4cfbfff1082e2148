"""OpenSSH public keys: parse, check strength, fingerprint; refuse private keys and weak types."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cloche.model.errors import Invalid

MINIMUM_RSA_BITS = 2048
# sshd reads keys of up to 16 KiB; a 16384-bit RSA key line is about 2.8 KiB.
MAX_LINE = 16 * 1024
# One request or key file adds at most this many keys.
MAX_KEYS = 100
ACCEPTED_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


@dataclass(frozen=True)
class PublicKey:
    """A checked OpenSSH public key."""

    key_type: str
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        """The SHA256 fingerprint as ssh-keygen -l prints it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    @property
    def line(self) -> str:
        """The key as one authorized_keys line."""
        encoded = base64.b64encode(self.blob).decode()
        return f"{self.key_type} {encoded} {self.comment}".rstrip()


def _read_strings(blob: bytes) -> list[bytes]:
    strings, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ValueError("truncated length")
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if offset + length > len(blob):
            raise ValueError("truncated field")
        strings.append(blob[offset : offset + length])
        offset += length
    return strings


def _check_one_line(stripped: str) -> None:
    # The key is parsed whole: its line goes into authorized_keys files, where a second line
    # would be a second key (or options) nobody added, so any line break is refused.
    if len(stripped.splitlines()) > 1:
        raise Invalid(
            "The SSH public key spans several lines; give one key per line (cloche user key "
            "add FILE adds each line of a file)."
        )
    if len(stripped) > MAX_LINE:
        raise Invalid(
            f"The SSH public key line is over {MAX_LINE} characters; give the contents of a "
            ".pub file."
        )
    if not stripped.isprintable():
        raise Invalid(
            "The SSH public key holds a control character or text that is not Unicode; give "
            "one line like 'ssh-ed25519 AAAA... you@laptop'."
        )


def parse_public_key(text: str) -> PublicKey:
    """Parse one OpenSSH public key line; raise Invalid with what is wrong and what to do."""
    stripped = text.strip()
    if "PRIVATE KEY" in stripped:
        raise Invalid(
            "This is a private key; never share it: give the public key (the .pub file) instead."
        )
    if not stripped:
        raise Invalid("The SSH public key is empty; give the contents of a .pub file.")
    _check_one_line(stripped)
    parts = stripped.split(None, 2)
    if len(parts) < 2:
        raise Invalid("This is not an OpenSSH public key; give a line like 'ssh-ed25519 AAAA...'.")
    key_type, encoded = parts[0], parts[1]
    comment = parts[2] if len(parts) > 2 else ""
    if key_type in {"ssh-dss", "ssh-dsa"}:
        raise Invalid("DSA keys are too weak and refused; make an ed25519 key with ssh-keygen.")
    if key_type not in ACCEPTED_TYPES:
        raise Invalid(
            f"Key type {key_type!r} is not an accepted OpenSSH public key type; "
            "use an ed25519 key (ssh-keygen -t ed25519)."
        )
    try:
        blob = base64.b64decode(encoded, validate=True)
        fields = _read_strings(blob)
    except (binascii.Error, ValueError):
        raise Invalid(
            "The SSH public key's data is corrupt (bad base64 or structure); copy the .pub file "
            "again."
        ) from None
    if not fields or fields[0].decode(errors="replace") != key_type:
        raise Invalid(
            f"The SSH public key says {key_type!r} but holds another key type; "
            "copy the .pub file again."
        )
    if key_type == "ssh-rsa":
        if len(fields) != 3:
            raise Invalid("The RSA public key is corrupt; copy the .pub file again.")
        bits = int.from_bytes(fields[2], "big").bit_length()
        if bits < MINIMUM_RSA_BITS:
            raise Invalid(
                f"This RSA key has {bits} bits, under the minimum of {MINIMUM_RSA_BITS}; "
                "make an ed25519 key with ssh-keygen -t ed25519."
            )
    if key_type == "ssh-ed25519" and (len(fields) != 2 or len(fields[1]) != 32):
        raise Invalid("The ed25519 public key is corrupt; copy the .pub file again.")
    return PublicKey(key_type=key_type, blob=blob, comment=comment)


def parse_public_keys(text: str, what: str) -> list[PublicKey]:
    """Every key of a file of public keys, one per line ('#' lines and blank lines skipped);
    Invalid naming the first bad line, so a file is taken whole or not at all."""
    keys: list[PublicKey] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            key = parse_public_key(line)
        except Invalid as error:
            raise Invalid(f"{what}, line {number}: {error}") from None
        if key.fingerprint in seen:
            raise Invalid(
                f"{what}, line {number} repeats the key of line {seen[key.fingerprint]}; "
                "remove one of them."
            )
        seen[key.fingerprint] = number
        keys.append(key)
        if len(keys) > MAX_KEYS:
            raise Invalid(f"{what} holds more than {MAX_KEYS} keys; split it into smaller files.")
    if not keys:
        raise Invalid(f"{what} holds no public key; give a .pub file.")
    return keys


def parse_key_list(texts: Sequence[str]) -> list[PublicKey]:
    """Each of several key lines (a request's list), refused whole on the first bad or repeated
    one."""
    if not texts:
        raise Invalid("No key was given; give at least one public key line.")
    if len(texts) > MAX_KEYS:
        raise Invalid(f"{len(texts)} keys at once is over {MAX_KEYS}; send fewer at a time.")
    keys: list[PublicKey] = []
    for number, text in enumerate(texts, start=1):
        try:
            key = parse_public_key(text)
        except Invalid as error:
            raise Invalid(f"Key {number} of {len(texts)}: {error}") from None
        if any(key.fingerprint == earlier.fingerprint for earlier in keys):
            raise Invalid(f"Key {number} of {len(texts)} repeats an earlier one; send it once.")
        keys.append(key)
    return keys
