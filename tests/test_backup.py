"""`flask backup DIR` and `flask restore DIR`, on the engine the suite runs on (SQLite, or PostgreSQL with
PPT_TEST_DATABASE_URL): backup -> wipe -> restore gives the same rows and the same files, and a backup
that does not match its manifest is refused before anything is changed."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
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
    done = _cli(app, "restore", "--force", str(folder))
    assert done.exit_code == 0, done.output
    assert "Etter kopien" not in str(_rows(app)["case"])


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
