"""Signed notes and checkpoints, as C2SP writes them (c2sp.org/signed-note, c2sp.org/tlog-checkpoint),
the formats of Go's checksum database and of today's transparency logs.

A note is UTF-8 text ending in a newline; after a blank line come signature lines
"— NAME BASE64(key id || signature)". An Ed25519 key's id is the first four bytes of
SHA-256(NAME || 0x0A || 0x01 || public key), and the key is published as the verifier key
NAME+HEX8+BASE64(0x01 || public key). A checkpoint is a note whose text is the log's origin,
its tree size and the base64 root hash, one per line.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import ReviewError

ED25519 = 0x01
DASH = "\u2014"          # the em dash that starts a signature line


class NoteError(ReviewError):
    """A note, checkpoint or verifier key that is malformed or does not verify."""


def check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"{name!r} cannot name a key or log: it needs at least one character, "
                        "no spaces and no '+'")
    return name


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A published verifier key: the name and the Ed25519 public key."""

    name: str
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public)

    def text(self) -> str:
        return f"{self.name}+{self.id.hex()}+{base64.b64encode(bytes([ED25519]) + self.public).decode()}"

    def verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_verifier(text: str) -> Verifier:
    """NAME+HEX8+BASE64 as published; refused with one line when it is not that."""
    text = text.strip()
    parts = text.split("+", 2)          # the name has no "+"; base64 may
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise NoteError("a verifier key reads NAME+HEX8+BASE64 (as `python -m review log key` "
                        f"prints it), not {text[:60]!r}")
    name, hex_id, data = parts
    check_name(name)
    try:
        raw = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise NoteError(f"verifier key {name}: its key data is not base64") from None
    if len(raw) != 33 or raw[0] != ED25519:
        raise NoteError(f"verifier key {name}: not an Ed25519 key (type 0x01 and 32 bytes)")
    verifier = Verifier(name, raw[1:])
    if verifier.id.hex() != hex_id:
        raise NoteError(f"verifier key {name}: its key id {hex_id} does not match its name and key")
    return verifier


def verifier_of(private: Ed25519PrivateKey, name: str) -> Verifier:
    return Verifier(check_name(name), _public_bytes(private.public_key()))


def sign(text: str, private: Ed25519PrivateKey, name: str) -> str:
    """The signed note of `text` (which must end in a newline)."""
    _check_text(text)
    verifier = verifier_of(private, name)
    signature = private.sign(text.encode())
    line = f"{DASH} {name} {base64.b64encode(verifier.id + signature).decode()}\n"
    return f"{text}\n{line}"


def _check_text(text: str) -> None:
    if not text.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note's text ends with a newline and holds no control characters")


@dataclass(frozen=True)
class Signature:
    name: str
    id: bytes
    signature: bytes


def split(note: str) -> tuple[str, list[Signature]]:
    """A signed note's text and its signature lines."""
    text, sep, signatures = note.rpartition("\n\n")
    if not sep:
        raise NoteError("not a signed note: no blank line before the signatures")
    text += "\n"
    _check_text(text)
    found = []
    for line in signatures.rstrip("\n").split("\n"):
        match = re.fullmatch(rf"{DASH} (\S+) ([A-Za-z0-9+/=]+)", line)
        if not match:
            raise NoteError(f"not a signed note: {line[:60]!r} is not a signature line")
        try:
            raw = base64.b64decode(match.group(2), validate=True)
        except binascii.Error:
            raise NoteError("not a signed note: a signature is not base64") from None
        if len(raw) < 5:
            raise NoteError("not a signed note: a signature is too short")
        found.append(Signature(match.group(1), raw[:4], raw[4:]))
    return text, found


def open_note(note: str, verifier: Verifier) -> str:
    """The text of a note signed by `verifier`; NoteError when no signature of that key holds."""
    text, signatures = split(note)
    mine = [s for s in signatures if s.name == verifier.name and s.id == verifier.id]
    if not mine:
        names = ", ".join(sorted({s.name for s in signatures})) or "nobody"
        raise NoteError(f"the note is not signed by key {verifier.name} ({verifier.id.hex()}); "
                        f"signed by {names}")
    if not any(verifier.verifies(text.encode(), s.signature) for s in mine):
        raise NoteError(f"the signature of key {verifier.name} does not verify: the note was "
                        "changed after it was signed, or signed by another key")
    return text


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise NoteError("not a checkpoint: its text is origin, tree size and root hash, one per line")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        root = b""
    if len(root) != 32:
        raise NoteError("not a checkpoint: its root hash is not 32 bytes of base64")
    return Checkpoint(lines[0], int(lines[1]), root)
