"""Backup and restore of an install: `flask --app ppt_web backup DIR` and `flask --app ppt_web restore DIR`.

A backup folder holds:
- the database: `database.sqlite` (SQLite's online backup API: a consistent copy while the app runs)
  or `database.dump` (PostgreSQL, `pg_dump --format=custom`);
- the instance's kept files, under the same relative names: `files/` (stored PDFs, named by their
  SHA-256), `quarantine/` (refused intake files), `signing/` (the test signing certificate, when no
  real one is configured: letters signed with it verify only against its own CA), `secret_key`, and
  the built-in archive (`archive/`, its SQLite database copied with the backup API too);
- `manifest.json`, written last: every file's SHA-256 and size, the database file's, the app version,
  the migration head and when the backup was made. A folder without it is an unfinished backup. It is not
  signed: it catches damage, not a rewrite by someone who can write the backup (docs/operations.md).

The folder is 0700 and every file in it 0600 (it holds every national id), whatever the umask.

The database is copied first and the files after it: files never change once written and are
written before the row naming them commits, so the copy holds every file the database names.

Restore checks the whole backup against its manifest before it changes anything, and refuses a
backup that is incomplete or does not match; it refuses an install that has data (unless --force)
or workers listening on its queue. It writes every file beside its target first, then the database,
then renames the files into place, so a full disk stops it before the database is touched.
Previews, tmp/, translations/ and Redis are not kept: they are rebuilt, scratch, compiled at start,
or hold nothing that must survive (docs/operations.md).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path, PurePosixPath

import click
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from rq import Worker
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import URL

from .activity import service as activity
from .auth import cache
from .clock import OSLO, utcnow
from .extensions import db
from .models import User
from .queue import get_queue

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE_FILES = {"sqlite": "database.sqlite", "postgresql": "database.dump"}
# The instance's folders and files a backup keeps (relative names, the same in the backup folder).
KEPT_FOLDERS = ("files", "quarantine", "signing")
KEPT_FILES = ("secret_key",)  # the only names a manifest may list bare, without a folder
KEPT = (*KEPT_FOLDERS, *KEPT_FILES)
ARCHIVE = "archive"  # the built-in archive's folder (PPT_LOCAL_ARCHIVE_DIR), wherever it lives
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
CHUNK = 1024 * 1024
# A backup holds every national id and the test certificate's private key: only its owner may read it.
FOLDER_MODE = 0o700
FILE_MODE = 0o600
STAGED = ".restore-"  # the prefix of a file a restore has written but not yet put in place


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass
class Manifest:
    created_at: str
    app_version: str
    migration: str | None
    engine: str
    database: dict
    files: list[dict] = field(default_factory=list)
    format: int = FORMAT

    def as_json(self) -> dict:
        return {"format": self.format, "created_at": self.created_at, "app_version": self.app_version,
                "migration": self.migration, "engine": self.engine, "database": self.database, "files": self.files}


# ----------------------------------------------------------------------------------------------- helpers


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(path: Path, name: str) -> dict:
    return {"path": name, "sha256": sha256_of(path), "size": path.stat().st_size}


def _engine() -> str:
    name = db.engine.dialect.name
    if name not in DATABASE_FILES:
        raise BackupError(f"cannot back up a {name} database: only SQLite and PostgreSQL")
    return name


def _sqlite_path() -> Path:
    database = db.engine.url.database
    if not database or database == ":memory:":
        raise BackupError("the SQLite database is in memory: there is nothing to back up or restore into")
    return Path(database)


def pg_tool(name: str) -> str:
    """pg_dump or pg_restore: the newest under /usr/lib/postgresql/*/bin (Debian keeps each major
    version there; a dump needs a pg_dump at least as new as the server), else the one on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.parent.name.split(".")])
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise BackupError(f"{name} was not found: install PostgreSQL's client programs (apt-get install postgresql-client)")


def _libpq(url: URL) -> tuple[str, dict]:
    """The database URL as libpq reads it, and the environment with its password (never on a command line)."""
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict, what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, umask=0o077)
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({Path(command[0]).name} exit {done.returncode}): "
                          f"{done.stderr.strip()[-2000:]}")


def _migration() -> str | None:
    if not inspect(db.engine).has_table("alembic_version"):
        return None
    return db.session.scalar(text("SELECT version_num FROM alembic_version"))


def _known_migrations() -> tuple[set[str], str | None] | None:
    """The revisions this code knows and its head, or None when they cannot be read (the check is then skipped)."""
    try:
        scripts = ScriptDirectory(str(current_app.extensions["migrate"].directory))
        return {rev.revision for rev in scripts.walk_revisions()}, scripts.get_current_head()
    except Exception:  # noqa: BLE001 - the check is a help, not a condition of a restore
        return None


def _app_version() -> str:
    try:
        return metadata.version("ppt_web")
    except metadata.PackageNotFoundError:
        return "unknown"


def _instance() -> Path:
    return Path(current_app.instance_path)


def _archive_dir() -> Path | None:
    folder = current_app.config.get("PPT_LOCAL_ARCHIVE_DIR")
    return Path(folder) if folder else None


def _sources() -> list[tuple[str, Path]]:
    """(name in the backup, where it is now) of every kept folder or file that exists."""
    out = [(name, _instance() / name) for name in KEPT]
    archive = _archive_dir()
    if archive is not None:
        out.append((ARCHIVE, archive))
    return [(name, path) for name, path in out if path.exists()]


def _walk(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not p.name.endswith(SQLITE_SIDE_FILES) and not p.name.startswith(STAGED))


def _is_sqlite(path: Path) -> bool:
    return path.suffix in SQLITE_SUFFIXES


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent copy of a live database (its WAL included), written
    through SQLite on both ends, so a target's own journal files are dealt with, never left stale."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source, timeout=60)
    dst = sqlite3.connect(target, timeout=60)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()


def _private_folder(folder: Path) -> None:
    """Make folder (and any missing parents) readable by its owner only, from the moment it exists."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(folder, FOLDER_MODE)


def _lock_down(folder: Path) -> None:
    """Every folder in a backup 0700 and every file 0600, whatever the umask or the originals' modes."""
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(Path(root) / name, FOLDER_MODE)
        for name in files:
            os.chmod(Path(root) / name, FILE_MODE)


# ------------------------------------------------------------------------------------------------ backup


def backup(folder: Path) -> Manifest:
    """Write a backup of the database and the kept files into folder (new or empty); its manifest.
    The folder is made readable by its owner only before anything is written into it (0700, files 0600)."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} is not an empty folder: give a new one for each backup")
    engine = _engine()
    try:
        _private_folder(folder)
        return _write_backup(folder, engine)
    except (OSError, sqlite3.Error) as exc:
        raise BackupError(f"the backup could not be written ({exc}): {folder} holds an unfinished backup "
                          "(it has no manifest); remove it, deal with the cause and run the backup again") from exc


def _write_backup(folder: Path, engine: str) -> Manifest:
    migration = _migration()
    database = folder / DATABASE_FILES[engine]
    if engine == "sqlite":
        source = _sqlite_path()
        if not source.exists():
            raise BackupError(f"the SQLite database {source} does not exist")
        db.session.remove()
        _sqlite_copy(source, database)
    else:
        url, env = _libpq(db.engine.url)
        _run([pg_tool("pg_dump"), "--format=custom", "--no-password", f"--file={database}", f"--dbname={url}"],
             env, "pg_dump")
    manifest = Manifest(created_at=utcnow().isoformat(), app_version=_app_version(), migration=migration,
                        engine=engine, database=_entry(database, database.name))
    for name, source in _sources():  # after the database: every file it names is there by now
        for path in _walk(source):
            relative = name if source.is_file() else f"{name}/{path.relative_to(source).as_posix()}"
            target = folder / relative
            target.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            if _is_sqlite(path):
                _sqlite_copy(path, target)
            else:
                shutil.copyfile(path, target)  # not copy2: the original's mode (0644) must not come along
            os.chmod(target, FILE_MODE)
            manifest.files.append(_entry(target, relative))
    _lock_down(folder)
    tmp = folder / (MANIFEST + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(manifest.as_json(), indent=1, ensure_ascii=False))
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, folder / MANIFEST)  # last: a backup without a manifest is unfinished
    return manifest


# ----------------------------------------------------------------------------------------------- restore


def _safe_name(name: object) -> str | None:
    """A manifest's relative name, when it stays inside the backup and names a kept file: a file inside a
    kept folder (never the folder itself), or one of the kept bare files."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        return None
    path = PurePosixPath(name)
    parts = path.parts
    if path.is_absolute() or ".." in parts or "." in name.split("/"):
        return None
    if len(parts) == 1 and parts[0] in KEPT_FILES:
        return name
    if len(parts) > 1 and parts[0] in (*KEPT_FOLDERS, ARCHIVE):
        return name
    return None


def read_manifest(folder: Path) -> Manifest:
    path = Path(folder) / MANIFEST
    if not Path(folder).is_dir():
        raise BackupError(f"{folder} is not a folder")
    if not path.is_file():
        raise BackupError(f"{folder} has no {MANIFEST}: the backup is incomplete (it did not finish) or not a backup")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest(created_at=str(raw["created_at"]), app_version=str(raw.get("app_version", "")),
                            migration=raw.get("migration"), engine=str(raw["engine"]), database=dict(raw["database"]),
                            files=list(raw["files"]), format=int(raw["format"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{MANIFEST} cannot be read ({exc}): not a backup made by this command") from exc
    if manifest.format != FORMAT:
        raise BackupError(f"{MANIFEST} has format {manifest.format}; this version reads format {FORMAT}")
    return manifest


def verify(folder: Path, manifest: Manifest) -> list[str]:
    """Every problem of the backup against its manifest (empty: it is whole and unchanged). Changes nothing."""
    folder = Path(folder)
    problems: list[str] = []
    expected_db = DATABASE_FILES.get(manifest.engine)
    entries: list[tuple[dict, str | None]] = [(manifest.database, expected_db)]
    entries += [(entry if isinstance(entry, dict) else {}, None) for entry in manifest.files]
    for entry, must_be in entries:
        name = entry.get("path")
        if must_be is not None and name != must_be:
            problems.append(f"the database file is listed as {name!r}, expected {must_be!r}")
            continue
        if must_be is None and _safe_name(name) is None:
            problems.append(f"a listed file has a name a restore may not write: {name!r}")
            continue
        path = folder / str(name)
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != entry.get("size"):
            problems.append(f"{name}: size {path.stat().st_size}, the manifest says {entry.get('size')}")
        elif sha256_of(path) != entry.get("sha256"):
            problems.append(f"{name}: its SHA-256 does not match the manifest (changed or damaged)")
        elif str(name).startswith("files/") and PurePosixPath(str(name)).name != entry.get("sha256"):
            problems.append(f"{name}: a stored file must be named by its SHA-256")
    return problems


def _has_data() -> bool:
    if not inspect(db.engine).has_table("user"):
        return False
    return bool(db.session.scalar(select(func.count()).select_from(User)))


def _workers_running() -> int:
    """How many workers listen on this install's queue (0 without Redis, or when it does not answer)."""
    if not current_app.config.get("PPT_REDIS_URL"):
        return 0
    try:
        return len(Worker.all(queue=get_queue()))
    except Exception:  # noqa: BLE001 - no Redis that answers: no worker can be using it
        return 0


@dataclass
class _Put:
    """One listed file of a backup: where it comes from, where it goes, and its copy written beside the target."""
    name: str
    source: Path
    target: Path
    staged: Path | None = None


def _plan(folder: Path, manifest: Manifest) -> list[_Put]:
    """Where each listed file goes; refuses (nothing changed) a target a restore could not write."""
    archive = _archive_dir()
    if archive is None and any(str(e["path"]).startswith(f"{ARCHIVE}/") for e in manifest.files):
        raise BackupError("the backup holds the built-in archive (archive/) but PPT_LOCAL_ARCHIVE_DIR is not set: "
                          "set it to the archive's folder and run the restore again; nothing was restored")
    puts, problems = [], []
    for entry in manifest.files:
        name = str(entry["path"])
        top, _, rest = name.partition("/")
        root = archive if top == ARCHIVE else _instance()
        assert root is not None
        target = root / rest if top == ARCHIVE else root / name
        puts.append(_Put(name, folder / name, target))
        if target.is_dir() and not target.is_symlink():
            problems.append(f"{target} is a folder in this install, and the backup has a file there")
            continue
        for parent in target.parents:
            if parent == root.parent:
                break
            if parent.exists() and not parent.is_dir():
                problems.append(f"{parent} is a file in this install, and the backup needs a folder there")
                break
            if parent.is_dir():
                if not os.access(parent, os.W_OK | os.X_OK):
                    problems.append(f"{parent} cannot be written by this user")
                break
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise BackupError(f"the backup's files cannot be put in place; nothing was restored:\n  {shown}")
    return puts


def _stage(puts: list[_Put], made: list[Path]) -> None:
    """Write every file beside its target under a temporary name (the same folder, so the swap is a rename
    and needs no space); made gets the folders made for them, to take away again if the restore stops."""
    for put in puts:
        made += [p for p in reversed(put.target.parents) if not p.exists()]  # before: mkdir may stop halfway
        put.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=put.target.parent, prefix=STAGED)
        put.staged = Path(tmp)
        if _is_sqlite(put.source):
            os.close(fd)
            _sqlite_copy(put.source, put.staged)
            os.chmod(put.staged, FILE_MODE)
            continue
        with os.fdopen(fd, "wb") as out, put.source.open("rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())


def _unstage(puts: list[_Put], made: list[Path]) -> None:
    """Take away what _stage wrote and was not put in place: the install is as it was before."""
    for put in puts:
        if put.staged is not None:
            put.staged.unlink(missing_ok=True)
            for suffix in SQLITE_SIDE_FILES:
                Path(f"{put.staged}{suffix}").unlink(missing_ok=True)
    for path in reversed(made):
        try:
            path.rmdir()
        except OSError:
            pass  # not empty (something else is in it now) or gone: leave it


def _swap(staged: Path, target: Path) -> None:
    """Put one staged file in place: a rename within its folder. A SQLite file's old journal files go
    first, or SQLite would apply them to the restored file."""
    if _is_sqlite(target):
        for suffix in SQLITE_SIDE_FILES:
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(staged, target)


def _restore_database(folder: Path, manifest: Manifest, engine: str) -> None:
    database = folder / manifest.database["path"]
    db.session.remove()
    db.engine.dispose()
    if engine == "sqlite":
        _sqlite_copy(database, _sqlite_path())
        with sqlite3.connect(_sqlite_path(), timeout=60) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
    else:
        url, env = _libpq(db.engine.url)
        _run([pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "--exit-on-error", "--no-password", f"--dbname={url}", str(database)], env, "pg_restore")


def restore(folder: Path, force: bool = False) -> Manifest:
    """Put a backup back: checked whole first, then the database, then the files. Refuses (BackupError,
    nothing changed) a backup that is incomplete or does not match its manifest, one of another engine
    or of a newer version, an install with workers on its queue, and one with data unless force."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    problems = verify(folder, manifest)
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise BackupError(f"the backup in {folder} does not match its manifest; nothing was restored:\n  {shown}")
    engine = _engine()
    if manifest.engine != engine:
        raise BackupError(f"the backup is of a {manifest.engine} database and this install uses {engine}: "
                          "restore it into an install of the same kind")
    known = _known_migrations()
    if manifest.migration and known is not None and manifest.migration not in known[0]:
        raise BackupError(f"the backup's database is at migration {manifest.migration}, which this version of "
                          f"the app does not know (made by version {manifest.app_version}): install that version")
    workers = _workers_running()
    if workers:
        raise BackupError(f"{workers} worker(s) listen on this install's queue: stop the web app and every worker "
                          "first (a worker's registration runs out a minute after it stops)")
    current = _migration()
    if engine == "postgresql" and current and manifest.migration and current != manifest.migration:
        # pg_restore --clean drops only what the dump has: tables of a later migration would stay, and
        # the next `db upgrade` would stumble on them.
        raise BackupError(f"this install's database is at migration {current} and the backup at "
                          f"{manifest.migration}: make the database anew, empty (dropdb, then createdb --owner "
                          "<the app's user>), and restore into it")
    if _has_data() and not force:
        raise BackupError("this install's database has data: a restore replaces it all. Stop the web app and the "
                          "workers, then run the restore again with --force")
    puts = _plan(folder, manifest)
    # The files are written beside their targets first: a full disk or a folder that cannot be written
    # stops the restore here, with the database and every file as they were.
    made: list[Path] = []
    try:
        _stage(puts, made)
    except (OSError, sqlite3.Error) as exc:
        _unstage(puts, made)
        raise BackupError(f"the backup's files could not be written into this install ({exc}); nothing was "
                          "restored: deal with the cause (free space, the folders' owner) and run the restore "
                          "again") from exc
    try:
        _restore_database(folder, manifest, engine)
    except (BackupError, OSError, sqlite3.Error) as exc:
        _unstage(puts, [])
        raise BackupError(f"the database could not be restored ({exc}). The restore is one transaction: the "
                          "database is as it was, and no file was put in place. Deal with the cause and run the "
                          "restore again") from exc
    done = 0
    try:
        for put in puts:
            assert put.staged is not None
            _swap(put.staged, put.target)
            put.staged = None
            done += 1
    except OSError as exc:
        left = [put.name for put in puts if put.staged is not None]
        _unstage(puts, [])
        raise BackupError(f"the database was restored and {done} of {len(puts)} files, then putting "
                          f"{left[0]} in place failed ({exc}). Not restored: {', '.join(left[:10])}"
                          f"{' ...' if len(left) > 10 else ''}. Deal with the cause and run the restore again "
                          "with --force: it puts everything back") from exc
    db.engine.dispose()
    cache.caches().changed()  # every process: its users and counts are read from the restored database
    activity.record("backup_restored", object_type="backup",
                    detail=f"backup made {manifest.created_at}, {len(manifest.files)} files")
    db.session.commit()
    return manifest


# ---------------------------------------------------------------------------------------------------- CLI


def init_app(app: Flask) -> None:
    @app.cli.command("backup")
    @click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
    def backup_command(folder: Path):
        """Back up the database and the kept files into FOLDER (new or empty), with a manifest of hashes."""
        try:
            manifest = backup(folder)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        size = manifest.database["size"] + sum(entry["size"] for entry in manifest.files)
        click.echo(f"backup in {folder}: the {manifest.engine} database (migration {manifest.migration}) and "
                   f"{len(manifest.files)} files, {size / 2**20:.1f} MB")

    @app.cli.command("restore")
    @click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--force", is_flag=True,
                  help="Replace a database that has data (stop the web app and the workers first).")
    def restore_command(folder: Path, force: bool):
        """Restore a backup made by `backup`: checked against its manifest first, then put back whole."""
        try:
            manifest = restore(folder, force=force)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"restored the backup made {_local(manifest.created_at)}: the database and "
                   f"{len(manifest.files)} files")
        known = _known_migrations()
        if known is not None and manifest.migration != known[1]:
            click.echo("the database is at an older migration: run `flask --app ppt_web db upgrade`")
        owner = _not_the_owner()
        if owner:
            click.echo(owner)
        click.echo("start the web app and the workers: the sweep sends whatever was still to be archived")


def _not_the_owner() -> str | None:
    """A warning when the restore ran as another user than the one owning the instance folder: the restored
    files are that user's (mode 0600), so the app's user cannot read them."""
    owner = _instance().stat().st_uid
    if os.geteuid() == owner:
        return None
    return (f"warning: the restored files belong to user id {os.geteuid()} (readable by it only), but the instance "
            f"folder {_instance()} belongs to user id {owner}: run restore as the app's user (runuser -u ppt --), "
            "or give the files to that user (chown -R) before starting the app")


def _local(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(OSLO).strftime("%d.%m.%Y %H:%M")
    except ValueError:
        return iso
