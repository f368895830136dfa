"""What a web worker does not load at start: the modules only the command line, a PDF check's child process or
the Fiks IO archive use (each costs megabytes of every worker's memory; docs/performance.md)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Only `flask db` and the other commands use Alembic, Flask-Migrate, the backup and the data generator; only the
# PDF check's child process reads a PDF (pypdf, pypdfium2); pika is the Fiks IO transport's; cryptography's X.509
# and asn1crypto are read where a key is loaded or a message encrypted; Pillow where a picture is uploaded.
NOT_AT_START = ("alembic", "flask_migrate", "pypdf", "pypdfium2", "pika", "cryptography.x509", "asn1crypto", "PIL",
                "ppt_web.cli", "ppt_web.backup", "ppt_web.generate", "ppt_web.postreg.mail_intake",
                "ppt_web.inbound.svarinn")


def python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PPT_INSTANCE_PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("PPT_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120, check=False)


def test_create_app_does_not_import_what_only_the_commands_or_the_pdf_child_use(tmp_path):
    code = ("import json, sys; from ppt_web import create_app; create_app(); "
            f"print(json.dumps([m for m in {NOT_AT_START!r} if m in sys.modules]))")
    python(code, tmp_path)  # the first start of an instance makes its test signing certificate (cryptography)
    out = python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_the_worker_warm_up_imports_every_module_but_the_command_line_ones(tmp_path):
    """worker.py imports the app's modules before any thread starts (a fork mid-import hangs a work horse);
    the command line's are left out, and with them Alembic."""
    code = ("import json, sys, worker; worker.warm_up(); "
            "print(json.dumps([m for m in ('alembic', 'ppt_web.cli', 'ppt_web.backup', 'ppt_web.generate', "
            "'ppt_web.postreg.mail_intake', 'ppt_web.archive.transports.fiksio') if m in sys.modules]))")
    out = python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == ["ppt_web.postreg.mail_intake", "ppt_web.archive.transports.fiksio"]


def test_flask_help_still_lists_every_command(tmp_path):
    out = python("import sys; from flask.cli import main; sys.argv = ['flask', '--app', 'ppt_web', '--help']; main()",
                 tmp_path)
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0] for line in out.stdout.split("Commands:", 1)[1].splitlines() if line.strip()}
    assert {"backup", "restore", "create-admin", "db", "demo-mail", "generate-data", "intake", "reference-archive",
            "seed-demo", "unarchivable-text"} <= listed


def test_the_commands_and_migrations_work_on_an_app_that_loaded_none_of_them(app):
    """The commands are added when the command line first looks them up; a migration makes Flask-Migrate's
    object when it first asks for it (the app fixture's database was migrated with flask_migrate.upgrade)."""
    result = app.test_cli_runner().invoke(args=["db", "current"])
    assert result.exit_code == 0, result.output  # 2, "No such command", had `db` not been added
    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
