"""Where uploaded PDFs are kept (the app's knowledge-team page and the HTTP API): <home>/uploads/<hash>/<name>.

Kept, not temporary: a cited page is rendered from the ingested PDF (rag.pages.read_source).
"""

from __future__ import annotations

from pathlib import Path

from rag.errors import ConfigError
from rag.types import sha256_hex


def upload_name(name: str) -> str:
    """The name an upload is kept under: its last path part without leading dots; ConfigError when unusable.

    Example: '../x/NG138 2025.pdf' -> 'NG138 2025.pdf'; '..pdf' -> ConfigError (nothing before .pdf)
    """
    if "\x00" in name:
        raise ConfigError(f"upload name {name!r} contains a NUL byte; rename the file and upload it again")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ConfigError(f"upload name {name!r} contains a control character; rename the file and upload it again")
    clean = Path(name.replace("\\", "/")).name.lstrip(".")
    if not clean.lower().endswith(".pdf") or not clean[:-4].strip(" ."):
        raise ConfigError(f"upload name {name!r} leaves no usable name (a name, then .pdf) once folders and leading "
                          "dots are removed; rename the file (e.g. NG138_2025.pdf) and upload it again")
    if len(clean.encode("utf-8")) > 255:
        raise ConfigError(f"upload name {clean[:40]!r}... is longer than 255 bytes; rename the file shorter")
    return clean


def save_upload(home: Path, name: str, data: bytes) -> Path:
    """Keep an uploaded PDF under <home>/uploads/<hash>/<name> (its name carries family and version).

    Example: (home, '../x/NG138 2025.pdf', b'...') -> home/uploads/<12 hex>/NG138 2025.pdf
    """
    clean = upload_name(name)
    folder = home / "uploads" / sha256_hex(data, 12)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / clean
    path.write_bytes(data)
    return path
