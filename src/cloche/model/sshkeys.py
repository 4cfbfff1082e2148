"""OpenSSH public keys: parse, check strength, fingerprint; refuse private keys and weak types."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cloche.model.errors import Invalid

MINIMUM_RSA_BITS = 2048
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


def parse_public_key(text: str) -> PublicKey:
    """Parse one OpenSSH public key line; raise Invalid with what is wrong and what to do."""
    stripped = text.strip()
    if "PRIVATE KEY" in stripped:
        raise Invalid(
            "This is a private key; never share it: give the public key (the .pub file) instead."
        )
    if not stripped:
        raise Invalid("The SSH public key is empty; give the contents of a .pub file.")
    parts = stripped.split(None, 2)
    if len(parts) < 2:
        raise Invalid("This is not an OpenSSH public key; give a line like 'ssh-ed25519 AAAA...'.")
    key_type, encoded = parts[0], parts[1]
    comment = parts[2] if len(parts) > 2 else ""
    # The line goes into authorized_keys files and the database: one line of printable text.
    if not comment.isprintable():
        raise Invalid(
            "The SSH public key's comment holds a line break, a control character or text that "
            "is not Unicode; give one line like 'ssh-ed25519 AAAA... you@laptop'."
        )
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
