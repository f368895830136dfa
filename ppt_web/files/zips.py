"""Unpacking a ZIP from outside (a SvarInn letter, a Fiks IO message) without trusting its directory."""
from __future__ import annotations

import io
import zipfile

CHUNK = 1024 * 1024


class ZipRefused(Exception):
    """The ZIP is damaged, encrypted, ambiguous or unpacks to more than the limit; the text says which."""


def unzip(data: bytes, max_bytes: int, *, max_entries: int | None = None, what: str = "the ZIP") -> dict[str, bytes]:
    """Every file entry by name, in the ZIP's order. A ZIP that unpacks to more than max_bytes (a zip
    bomb), has more than max_entries files, holds a name twice or an encrypted entry is refused; the
    sizes in the directory can lie, so the bytes actually inflated are counted too. `what` names the
    ZIP in the refusal ("the container")."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if max_entries is not None and len(infos) > max_entries:
            raise ZipRefused(f"{what} has more than {max_entries} entries")
        if sum(info.file_size for info in infos) > max_bytes:
            raise ZipRefused(f"{what} unpacks to more than the limit of {max_bytes} bytes")
        files: dict[str, bytes] = {}
        total = 0
        for info in infos:
            name = zip_name(info)
            if name in files:
                raise ZipRefused(f"{what} holds {name!r} twice")
            if info.flag_bits & 0x1:
                raise ZipRefused(f"{name!r} is encrypted inside {what}")
            out = io.BytesIO()
            with archive.open(info) as member:
                while chunk := member.read(CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ZipRefused(f"{what} unpacks to more than the limit of {max_bytes} bytes")
                    out.write(chunk)
            files[name] = out.getvalue()
    except ZipRefused:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, ValueError, OSError,
            EOFError) as exc:
        raise ZipRefused(f"{what} cannot be read as a ZIP ({exc})") from None
    return files


def zip_name(info: zipfile.ZipInfo) -> str:
    """Names without the UTF-8 flag were decoded as CP437; most such writers really wrote UTF-8."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename
