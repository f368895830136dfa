"""`flask backup DIR` and `flask restore DIR`, on the engine the suite runs on (SQLite, or PostgreSQL with
PPT_TEST_DATABASE_URL): backup -> wipe -> restore gives the same rows and the same files, and a backup
that does not match its manifest is refused before anything is changed."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from ppt_web import backup as backups
from ppt_web.archive import sending
from ppt_web.archive.transports.local import LocalArchive
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, Case

from . import builders
from .helpers import stored_count

pytestmark = pytest.mark.app_config(PPT_QUEUE_NAME=f"backup-{uuid.uuid4().hex[:8]}")


def _cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def _fill(app) -> None:
    """Clients, cases, posts with stored PDFs, and archive jobs sent to the built-in archive."""
    with app.app_context():
        for n in range(3):
            case = builders.case(title=f"Sak {n}")
            builders.finalized_post(case, title=f"Notat {n}")
            builders.post(case, title=f"Utkast {n}")
        for job_id in db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)):
            sending.process(job_id, "test")
        db.session.remove()


def _rows(app) -> dict[str, list[str]]:
    """Every table's rows, as sorted text (the restore's own activity row left out)."""
    with app.app_context():
        out = {}
        for table in sorted(inspect(db.engine).get_table_names()):
            rows = [repr(tuple(row)) for row in db.session.execute(text(f'SELECT * FROM "{table}"'))]
            out[table] = sorted(r for r in rows if "backup_restored" not in r)
        db.session.remove()
        return out


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def _stored(app) -> dict[str, str]:
    return _hashes(Path(app.instance_path) / "files")


def _archive(app) -> LocalArchive:
    return LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"])


def _wipe(app) -> None:
    """The install is lost: an empty database and no files."""
    with app.app_context():
        db.session.remove()
        if db.engine.dialect.name == "sqlite":
            db.engine.dispose()
            path = Path(db.engine.url.database)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            db.engine.dispose()
    for folder in ("files", "signing", "quarantine"):
        shutil.rmtree(Path(app.instance_path) / folder, ignore_errors=True)
    shutil.rmtree(app.config["PPT_LOCAL_ARCHIVE_DIR"], ignore_errors=True)


def test_backup_wipe_restore_gives_the_same_rows_and_files(app, tmp_path):
    _fill(app)
    rows, files = _rows(app), _stored(app)
    archived = stored_count(_archive(app))
    assert files and archived >= 6 and rows["journal_post"] and rows["activity_log"]
    made = _cli(app, "backup", str(tmp_path / "backup"))
    assert made.exit_code == 0, made.output
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    assert all(listed[f"files/{name}"] == sha for name, sha in files.items())
    assert manifest["migration"] and manifest["created_at"] and manifest["app_version"]
    assert manifest["database"]["path"] in ("database.sqlite", "database.dump")

    _wipe(app)
    assert _rows(app) == {} and not (Path(app.instance_path) / "files").exists()
    done = _cli(app, "restore", str(tmp_path / "backup"))
    assert done.exit_code == 0, done.output
    assert _rows(app) == rows
    assert _stored(app) == files
    assert stored_count(_archive(app)) == archived
    with app.app_context():
        builders.case(title="Etter attoppretting")  # ids and sequences carry on where they were
        assert db.session.scalar(select(db.func.count()).select_from(Case)) == 4
        assert db.session.scalar(text("SELECT count(*) FROM activity_log WHERE action = 'backup_restored'")) == 1


def _backup(app, tmp_path) -> Path:
    _fill(app)
    folder = tmp_path / "backup"
    made = _cli(app, "backup", str(folder))
    assert made.exit_code == 0, made.output
    return folder


def _one_stored_file(folder: Path) -> Path:
    return next(p for p in sorted((folder / "files").rglob("*")) if p.is_file())


def _add_a_case(app) -> None:
    with app.app_context():
        builders.case(title="Etter kopien")
        db.session.remove()


@pytest.mark.parametrize("damage", ["changed file", "missing file", "changed database", "no manifest",
                                    "a name outside the backup"])
def test_a_backup_that_does_not_match_its_manifest_is_refused_and_nothing_changes(app, tmp_path, damage):
    folder = _backup(app, tmp_path)
    _add_a_case(app)  # the install moved on: a restore would take this case away
    if damage == "changed file":
        victim = _one_stored_file(folder)
        victim.write_bytes(victim.read_bytes()[:-1] + b"X")
    elif damage == "missing file":
        _one_stored_file(folder).unlink()
    elif damage == "changed database":
        with (folder / json.loads((folder / "manifest.json").read_text())["database"]["path"]).open("ab") as f:
            f.write(b"\0")
    elif damage == "no manifest":
        (folder / "manifest.json").unlink()
    else:
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"][0]["path"] = "../../etc/evil"
        (folder / "manifest.json").write_text(json.dumps(manifest))
    rows, files = _rows(app), _stored(app)
    refused = _cli(app, "restore", "--force", str(folder))
    assert refused.exit_code != 0
    assert "nothing was restored" in refused.output or "incomplete" in refused.output
    assert _rows(app) == rows and _stored(app) == files
    assert "Etter kopien" in str(rows["case"])


def test_restore_over_an_install_with_data_needs_force(app, tmp_path):
    folder = _backup(app, tmp_path)
    _add_a_case(app)
    rows = _rows(app)
    refused = _cli(app, "restore", str(folder))
    assert refused.exit_code != 0 and "--force" in refused.output
    assert _rows(app) == rows
    stamps = app.extensions["ppt_caches"]
    before = stamps.auth.read(), stamps.counts.read()
    done = _cli(app, "restore", "--force", str(folder))
    assert done.exit_code == 0, done.output
    assert "Etter kopien" not in str(_rows(app)["case"])
    # Every running process reads its users and counts again from the restored database.
    assert stamps.auth.read() != before[0] and stamps.counts.read() != before[1]


def test_backup_wants_a_new_or_empty_folder(app, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "something").write_text("x")
    refused = _cli(app, "backup", str(tmp_path / "old"))
    assert refused.exit_code != 0 and "empty" in refused.output
    assert os.listdir(tmp_path / "old") == ["something"]


def test_restore_refuses_a_backup_of_the_other_engine(app, tmp_path):
    folder = _backup(app, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    other = "postgresql" if manifest["engine"] == "sqlite" else "sqlite"
    database = folder / manifest["database"]["path"]
    database.rename(folder / backups.DATABASE_FILES[other])
    manifest["engine"], manifest["database"]["path"] = other, backups.DATABASE_FILES[other]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    rows = _rows(app)
    refused = _cli(app, "restore", "--force", str(folder))
    assert refused.exit_code != 0 and "same kind" in refused.output
    assert _rows(app) == rows


def test_postgresql_refuses_a_restore_over_a_database_at_another_migration(app, tmp_path):
    """pg_restore --clean drops only what the dump holds: a later migration's tables would stay behind."""
    folder = _backup(app, tmp_path)
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite's restore replaces the whole database file")
        db.session.execute(text("UPDATE alembic_version SET version_num = '0015'"))
        db.session.commit()
    rows = _rows(app)
    refused = _cli(app, "restore", "--force", str(folder))
    assert refused.exit_code != 0 and "migration 0015" in refused.output
    assert _rows(app) == rows


def test_restore_refuses_while_a_worker_listens_on_the_queue(app, tmp_path):
    from rq import Worker

    from ppt_web.queue import connection, get_queue

    folder = _backup(app, tmp_path)
    with app.app_context():
        worker = Worker([get_queue()], connection=connection(), name=f"backup-test-{uuid.uuid4().hex[:6]}")
    worker.register_birth()
    try:
        refused = _cli(app, "restore", "--force", str(folder))
    finally:
        worker.register_death()
    assert refused.exit_code != 0 and "worker" in refused.output


# ------------------------------------------------------------------ who may read a backup, and a restore that stops


def _modes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in sorted(root.rglob("*"))}


def _staged_left(app) -> list[Path]:
    roots = [Path(app.instance_path), Path(app.config["PPT_LOCAL_ARCHIVE_DIR"])]
    return [p for root in roots if root.exists() for p in root.rglob(f"{backups.STAGED}*")]


def test_a_backup_is_readable_by_its_owner_only(app, tmp_path):
    """It holds every national id: with the usual umask 022 and originals at 0644, the folder is still 0700
    and every folder in it 0700, every file 0600."""
    _fill(app)
    for path in Path(app.instance_path).rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    old = os.umask(0o022)
    try:
        made = _cli(app, "backup", str(tmp_path / "backup"))
    finally:
        os.umask(old)
    assert made.exit_code == 0, made.output
    folder = tmp_path / "backup"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    modes = _modes(folder)
    assert {"manifest.json", "files", "signing"} <= set(modes)
    assert {name: mode for name, mode in modes.items()
            if mode != (0o700 if (folder / name).is_dir() else 0o600)} == {}


def _list_in_manifest(folder: Path, name: str, content: bytes) -> None:
    """Someone put a plain file `name` into the backup and listed it in the manifest with its right hash."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = [e for e in manifest["files"] if e["path"].split("/")[0] != name.split("/")[0]]
    shutil.rmtree(folder / name.split("/")[0], ignore_errors=True)
    (folder / name).write_bytes(content)
    manifest["files"].append({"path": name, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)})
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["quarantine", "signing", "files"])
def test_a_manifest_listing_a_kept_folder_as_a_file_is_refused_before_anything_changes(app, tmp_path, name):
    folder = _backup(app, tmp_path)
    _list_in_manifest(folder, name, b"not a folder")
    (Path(app.instance_path) / name).mkdir(exist_ok=True)
    _add_a_case(app)
    rows, files = _rows(app), _stored(app)
    refused = _cli(app, "restore", "--force", str(folder))
    assert isinstance(refused.exception, SystemExit), refused.exception  # a message, not a traceback
    assert refused.exit_code != 0 and "nothing was restored" in refused.output
    assert f"{name!r}" in refused.output
    assert _rows(app) == rows and _stored(app) == files


def test_a_folder_in_the_install_where_the_backup_has_a_file_is_refused_before_anything_changes(app, tmp_path):
    folder = _backup(app, tmp_path)
    name = _one_stored_file(folder).relative_to(folder)
    in_install = Path(app.instance_path) / name
    in_install.unlink()
    in_install.mkdir()
    (in_install / "something").write_text("x")
    _add_a_case(app)
    rows, files = _rows(app), _stored(app)
    refused = _cli(app, "restore", "--force", str(folder))
    assert isinstance(refused.exception, SystemExit), refused.exception
    assert refused.exit_code != 0 and "nothing was restored" in refused.output and str(in_install) in refused.output
    assert _rows(app) == rows and _stored(app) == files and _staged_left(app) == []


def test_a_full_disk_while_the_files_are_written_changes_nothing(app, tmp_path, monkeypatch):
    folder = _backup(app, tmp_path)
    _add_a_case(app)
    rows, files = _rows(app), _stored(app)
    real, calls = shutil.copyfileobj, []

    def fills_the_disk(src, dst, length=0):
        calls.append(1)
        if len(calls) == 3:
            dst.write(src.read(10))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, length)

    monkeypatch.setattr(shutil, "copyfileobj", fills_the_disk)
    refused = _cli(app, "restore", "--force", str(folder))
    monkeypatch.undo()
    assert isinstance(refused.exception, SystemExit), refused.exception
    assert refused.exit_code != 0
    assert "No space left on device" in refused.output and "nothing was restored" in refused.output
    assert _rows(app) == rows and _stored(app) == files and _staged_left(app) == []
    assert "Etter kopien" in str(rows["case"])


def test_a_failure_after_the_database_says_what_was_restored_and_a_second_run_finishes(app, tmp_path, monkeypatch):
    folder = _backup(app, tmp_path)
    files = _stored(app)
    archived = stored_count(_archive(app))
    _add_a_case(app)
    real, calls = backups._swap, []

    def fails_once(staged, target):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real(staged, target)

    monkeypatch.setattr(backups, "_swap", fails_once)
    half = _cli(app, "restore", "--force", str(folder))
    monkeypatch.undo()
    assert isinstance(half.exception, SystemExit), half.exception
    assert half.exit_code != 0
    assert "the database was restored and 1 of" in half.output and "--force" in half.output
    assert "Input/output error" in half.output and _staged_left(app) == []
    done = _cli(app, "restore", "--force", str(folder))
    assert done.exit_code == 0, done.output
    assert "Etter kopien" not in str(_rows(app)["case"])
    assert _stored(app) == files and stored_count(_archive(app)) == archived


def test_a_backup_with_the_archive_is_refused_when_the_install_has_no_archive_folder(app, tmp_path):
    """The archive's files are not skipped without a word: the operator sets PPT_LOCAL_ARCHIVE_DIR first."""
    folder = _backup(app, tmp_path)
    assert any(e["path"].startswith("archive/")
               for e in json.loads((folder / "manifest.json").read_text())["files"])
    _add_a_case(app)
    rows = _rows(app)
    app.config["PPT_LOCAL_ARCHIVE_DIR"] = ""
    refused = _cli(app, "restore", "--force", str(folder))
    assert refused.exit_code != 0 and "PPT_LOCAL_ARCHIVE_DIR" in refused.output
    assert "nothing was restored" in refused.output
    assert _rows(app) == rows


def test_restored_files_are_the_runners_own_and_another_user_is_warned(app, tmp_path, monkeypatch):
    """Restore writes files 0600 owned by whoever runs it: run as another user than the instance's owner
    (root, say), it says so, so the operator runs it with runuser or chowns the files."""
    folder = _backup(app, tmp_path)
    _wipe(app)
    owner = Path(app.instance_path).stat().st_uid
    monkeypatch.setattr(backups.os, "geteuid", lambda: owner + 1)
    done = _cli(app, "restore", str(folder))
    monkeypatch.undo()
    assert done.exit_code == 0, done.output
    assert "warning" in done.output and "runuser -u ppt" in done.output
    stored = [p for p in (Path(app.instance_path) / "files").rglob("*") if p.is_file()]
    assert stored and {stat.S_IMODE(p.stat().st_mode) for p in stored} == {0o600}
    same = _cli(app, "restore", "--force", str(folder))
    assert same.exit_code == 0 and "warning" not in same.output
