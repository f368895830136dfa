"""Fill a migrated database with N years of a PPT service's work, fast, by bulk inserts.

    .venv/bin/python bench/bigdata.py --instance /tmp/big-sqlite --clients 20000
    .venv/bin/python bench/bigdata.py --instance /tmp/big-pg --clients 20000 \\
        --database-url 'postgresql+psycopg://ppt@/big?host=/tmp/pgdir'

`flask generate-data` goes through the services (real PDFs, one transaction per action) and is
far too slow for ten years of a large service. This script makes rows that look like what the
services make, planned in memory first and then written table by table with SQLAlchemy Core
executemany, one transaction per batch:

- ids follow time, as they do in a real database: clients by registration, cases by opening
  date (case number "YYYY/NNNNN" from the id, as cases.service does), posts by registration
  time (seq per case in that order), archive jobs by creation time (after_job_id = the case's
  previous job, as archive.outbox does);
- posts I/U/N/X, correspondents on I and U posts, a main document (some with an attachment)
  pointing at a dozen shared stored_file rows whose PDFs exist under INSTANCE/files;
- old posts finalized (expert assessments through a leader's approval, with post events),
  recent ones partly drafts; `--pending-approvals` posts wait for the leader; incoming posts
  mostly written off (TE/TO, or BU by a reply);
- archive jobs: case created, post finalized, post written off, case closed; almost all
  Arkivert (done), `--failed-jobs` failed (most recent, some old), the newest few Ny,
  a few soft-deleted; messages as archive.sending writes them;
- the post registration inbox: `--open-inbox` items waiting (new, in progress, checked), and
  a history of transferred and rejected items.

"Current work" (waiting approvals, open inbox items, failed archive jobs) has a fixed size
whatever --clients is: a larger history should not change what a person has on their desk.
Migration 0002's triggers refuse documents and correspondents of a finalized post, so posts go
in as drafts with their children and are flipped to finalized in the same transaction.
Ends with ANALYZE (PostgreSQL: VACUUM ANALYZE). Prints rows/s per table and the total time.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time as _time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ppt_web import generate  # noqa: E402  (after the path)

GIVEN = ["Emma", "Nora", "Sofie", "Ella", "Olivia", "Ingrid", "Leah", "Sara", "Maja", "Frida", "Jakob", "Emil",
         "Noah", "Oliver", "Filip", "William", "Lucas", "Liam", "Henrik", "Aksel", "Tobias", "Sander", "Iver",
         "Ylva", "Sigrid", "Astrid", "Tiril", "Eirik", "Magnus", "Vetle", "Synne", "Marius", "Ada", "Alma",
         "Amalie", "Anna", "Aurora", "Eva", "Hedda", "Ida", "Iben", "Julie", "Kaja", "Linnea", "Live", "Mathilde",
         "Mia", "Oda", "Selma", "Siri", "Thea", "Vilde", "Adrian", "Alexander", "Anders", "Andreas", "Benjamin",
         "Daniel", "Edvard", "Elias", "Even", "Isak", "Johannes", "Jonas", "Kasper", "Kristian", "Lars",
         "Leon", "Ludvig", "Mats", "Mikkel", "Ole", "Oskar", "Peder", "Sebastian", "Sindre", "Theodor", "Tor"]
FAMILY = ["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Jensen",
          "Karlsen", "Haugen", "Berg", "Hagen", "Eide", "Vik", "Dahl", "Myklebust", "Ulstein", "Hareide",
          "Moldskred", "Flø", "Kvalsund", "Osnes", "Saunes", "Brandal", "Hasund", "Garshol", "Aarseth",
          "Johnsen", "Eriksen", "Berntsen", "Solberg", "Strand", "Jacobsen", "Halvorsen", "Bakke", "Kristoffersen",
          "Lie", "Amundsen", "Moen", "Lund", "Iversen", "Nguyen", "Ali", "Ahmed", "Mohamed", "Nielsen",
          "Bakken", "Rasmussen", "Solheim", "Holm", "Sæther", "Lunde", "Ruud", "Knutsen", "Mathisen",
          "Kristensen", "Gundersen", "Ellingsen", "Aasen", "Fredriksen", "Myhre", "Sandvik", "Tveit", "Nygård",
          "Nordby", "Vestby", "Tangen", "Sunde", "Brekke", "Fjeld", "Fosse", "Grønli", "Hauge", "Hovland",
          "Aune", "Bjørnstad", "Dale", "Engen", "Fossum", "Gjerde", "Haug", "Helland", "Hovde", "Kvam",
          "Lien", "Løvik", "Moe", "Nesheim", "Opsahl", "Rønning", "Sande", "Skjelbred", "Stene", "Storvik",
          "Søvik", "Tufte", "Urke", "Vatne", "Vold", "Ødegård", "Øvrebø", "Aasheim", "Bø", "Drabløs", "Eiken",
          "Flem", "Giske", "Hjelle", "Hatlø", "Kvalsvik", "Leine", "Liaaen", "Myrvang", "Ose", "Remøy",
          "Rusten", "Sandal", "Skeide", "Slettevoll", "Teigen", "Tennfjord", "Vartdal", "Vågen", "Yksnøy"]
PLACES = ["Ulsteinvik", "Hasund", "Haddal", "Flø", "Dimna", "Eiksund", "Hareid", "Brandal", "Volda", "Ørsta",
          "Fosnavåg", "Larsnes", "Herøy", "Sande", "Stranda", "Sykkylven"]
CATEGORIES, CASE_TITLES = generate.CATEGORIES, generate.CASE_TITLES  # the same cases as generate-data
POST_TITLES = {
    "I": ["Tilvising", "Pedagogisk rapport", "Samtykke frå føresette", "Kartlegging frå skulen", "Referat frå møte",
          "Søknad om utsett skulestart", "Rapport frå barnehagen", "Legeerklæring", "Logopedrapport"],
    "U": ["Sakkunnig vurdering", "Innkalling til samtale", "Uttale", "Svar på førespurnad", "Brev til føresette",
          "Melding om vedtak", "Tilbakemelding til skulen", "Rettleiingsnotat til barnehagen"],
    "N": ["Samtale med føresette", "Observasjon i klasse", "Testresultat", "Notat frå drøfting",
          "Kartlegging WISC-V", "Observasjon i barnehagen"],
    "X": ["Telefon med skulen", "Intern merknad", "Telefon med føresette"],
}
FAILED_MESSAGES = [
    "Arkivet avviste meldinga: Ugyldig klassifikasjon for saksmappa (ordningsprinsipp FNR).",
    "Gav opp etter 8 forsøk: Tidsavbrot mot Fiks IO (ingen kvittering på 30 s). Prøv på nytt når feilen er retta.",
    "Kunne ikkje sende: fila til hovuddokumentet manglar i fillageret.",
    "Arkivet tok imot meldinga, men avviste ein del av ho: dokumentbeskrivelse manglar tittel",
    "Meldinga er ikkje gyldig og vart ikkje sendt: korrespondansepart manglar namn.",
    "Ingen kvittering frå arkivet innan fristen.",
    "Intern feil i fagsystemet (OperationalError). Sjå loggen; prøv på nytt når feilen er retta.",
]
INBOX_SENDERS = ["Ulstein skule", "Hasund skule", "Flø barnehage", "Helsestasjonen", "BUP Volda", "Føresette",
                 "Statsforvaltaren", "Barnevernstenesta", "Ulsteinvik barnehage", "Fastlegen"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instance", required=True, help="instance folder (files/ goes here; also the SQLite file "
                                                     "when --database-url is not given)")
    p.add_argument("--database-url", default=None, help="SQLAlchemy URL; default sqlite:///INSTANCE/ppt.sqlite")
    p.add_argument("--clients", type=int, default=2000, help="20000: ~60k cases, ~600k posts (default 2000)")
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=20000, help="rows per transaction")
    p.add_argument("--pending-approvals", type=int, default=60)
    p.add_argument("--open-inbox", type=int, default=250)
    p.add_argument("--failed-jobs", type=int, default=40)
    p.add_argument("--new-jobs", type=int, default=12)
    p.add_argument("--deleted-jobs", type=int, default=20)
    p.add_argument("--heavy-every", type=int, default=500,
                   help="two of every N clients are 'heavy' ones: 6 cases of 20 posts (the client-folder benchmark)")
    return p.parse_args(argv)


class Timer:
    def __init__(self):
        self.rows: dict[str, int] = defaultdict(int)
        self.secs: dict[str, float] = defaultdict(float)

    def add(self, table: str, n: int, secs: float) -> None:
        self.rows[table] += n
        self.secs[table] += secs


def insert(conn, table, rows: list[dict], timer: Timer) -> None:
    """SQLAlchemy Core executemany; on PostgreSQL a COPY (psycopg 3), many times faster than row INSERTs.

    Triggers and foreign keys apply to COPY as to INSERT."""
    if not rows:
        return
    t0 = _time.perf_counter()
    if conn.dialect.name == "postgresql":
        import json

        from sqlalchemy import JSON

        columns = list(rows[0])
        as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
        cursor = conn.connection.driver_connection.cursor()
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c]) if c in as_json and row[c] is not None else row[c]
                                for c in columns])
    else:
        conn.execute(table.insert(), rows)
    timer.add(table.name, len(rows), _time.perf_counter() - t0)


def at(day: date, rng: random.Random, start: int = 8, end: int = 16) -> datetime:
    """A working-hours moment on a day (Oslo-ish hours, stored as UTC)."""
    return datetime.combine(day, time(rng.randint(start - 2, end - 2), rng.randint(0, 59), rng.randint(0, 59),
                                      rng.randint(0, 999999)), UTC)


def main(argv=None) -> int:
    args = parse_args(argv)
    instance = Path(args.instance).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{instance / 'ppt.sqlite'}"
    os.environ.pop("PPT_DATABASE_URL", None)

    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from ppt_web import create_app
    from ppt_web.cli import seed_demo_users
    from ppt_web.extensions import db
    from ppt_web.generate import national_id, org_number, text_pdf
    from ppt_web.models import Client, User

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(instance), "SECRET_KEY": "bench-bigdata",
                      "PPT_REDIS_URL": "redis://127.0.0.1:1/0", "WTF_CSRF_ENABLED": False})
    started = _time.monotonic()
    with app.app_context():
        t0 = _time.monotonic()
        upgrade()
        seed_demo_users()
        print(f"migrated and seeded in {_time.monotonic() - t0:.1f} s ({db.engine.dialect.name})", flush=True)
        if db.session.scalar(select(func.count()).select_from(Client)):
            print("the database has clients already: give a fresh one", file=sys.stderr)
            return 2
        users = {u.username: u.id for u in db.session.scalars(select(User))}
        db.session.commit()
        engine = db.engine
        tables = db.metadata.tables
        sqlite = engine.dialect.name == "sqlite"

        # Shared PDFs, in the file store as storage.store_upload leaves them.
        import hashlib

        from ppt_web.files.storage import file_path

        files = []
        for i in range(12):
            pdf = text_pdf(f"Syntetisk dokument {i + 1}", 1 + i % 4)
            sha = hashlib.sha256(pdf).hexdigest()
            target = file_path(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.write_bytes(pdf)
            files.append((sha, len(pdf), 1 + i % 4))
        with engine.begin() as conn:
            known = set(conn.scalars(select(tables["stored_file"].c.sha256)))
            missing = [{"sha256": s, "size": n, "page_count": pc, "content_type": "application/pdf",
                        "created_at": datetime.now(UTC)} for s, n, pc in files if s not in known]
            if missing:
                conn.execute(tables["stored_file"].insert(), missing)

        plan = Plan(args, users, files, national_id, org_number)
        t0 = _time.monotonic()
        plan.build()
        print(f"planned in {_time.monotonic() - t0:.1f} s: "
              + ", ".join(f"{k} {len(v)}" for k, v in plan.sizes().items()), flush=True)

        timer = Timer()
        if sqlite:
            # A bulk load: no fsync per batch, and a page cache big enough for the indexes.
            from sqlalchemy import event

            engine.dispose()

            @event.listens_for(engine, "connect")
            def _bulk_pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA synchronous=OFF")
                cursor.execute("PRAGMA cache_size=-1000000")
                cursor.close()
        t_load = _time.monotonic()
        plan.write(engine, tables, timer, sqlite)
        load_secs = _time.monotonic() - t_load

        t0 = _time.monotonic()
        if sqlite:
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        else:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        analyze_secs = _time.monotonic() - t0
        engine.dispose()

    total_rows = sum(timer.rows.values())
    print(f"{'table':18s} {'rows':>9s} {'seconds':>8s} {'rows/s':>9s}")
    for name in timer.rows:
        print(f"{name:18s} {timer.rows[name]:9d} {timer.secs[name]:8.1f} "
              f"{timer.rows[name] / max(timer.secs[name], 1e-9):9.0f}")
    print(f"loaded {total_rows} rows in {load_secs:.1f} s ({total_rows / load_secs:.0f} rows/s); "
          f"analyze {analyze_secs:.1f} s; total {_time.monotonic() - started:.1f} s")
    if sqlite:
        size = sum(p.stat().st_size for p in instance.glob("ppt.sqlite*"))
        print(f"database file {size / 2**20:.0f} MiB: {instance / 'ppt.sqlite'}")
    return 0


class Plan:
    """Everything in memory first (compact tuples), sorted by time, ids given in that order."""

    def __init__(self, args, users: dict, files, national_id, org_number):
        self.args = args
        self.rng = random.Random(args.seed)
        self.users = users
        self.files = files
        self.national_id = national_id
        self.org_number = org_number
        self.today = date.today()
        self.now = datetime.now(UTC)
        self.first_day = self.today - timedelta(days=365 * args.years)
        self.handlers = [users["radgjevar1"], users["radgjevar2"]]
        self.registrars = [users["konsulent"], users["sekretaer"]]
        self.leader, self.deputy = users["leiar"], users["nestleiar"]
        self.orgs: list[dict] = []
        self.clients: list[dict] = []
        self.cases: list[dict] = []
        self.cohandlers: list[dict] = []
        self.posts: list[dict] = []
        self.jobs: list[dict] = []
        self.inbox: list[dict] = []

    def sizes(self) -> dict:
        return {"organisations": self.orgs, "clients": self.clients, "cases": self.cases, "posts": self.posts,
                "archive jobs": self.jobs, "inbox items": self.inbox}

    def day_between(self, a: date, b: date) -> date:
        return a + timedelta(days=self.rng.randint(0, max(0, (b - a).days)))

    # -- planning -------------------------------------------------------------------------------

    def build(self) -> None:
        rng, args = self.rng, self.args
        used_orgs = set()
        for i in range(max(4, args.clients // 25)):
            kind = "kindergarten" if i % 2 else "school"
            place = rng.choice(PLACES)
            number = self.org_number(rng.randrange(10**7))
            while number in used_orgs:
                number = self.org_number(rng.randrange(10**7))
            used_orgs.add(number)
            name = f"{place} {'barnehage' if kind == 'kindergarten' else 'skule'} {i + 1}"
            self.orgs.append({"id": i + 1, "name": name, "name_lower": name.lower(), "org_number": number,
                              "kind": kind, "parent_id": None,
                              "address": f"{rng.choice(PLACES)}vegen {rng.randint(1, 80)}",
                              "created_at": datetime.combine(self.first_day, time(9), UTC)})

        # Clients, by the day they were first referred; more in recent years (the service grew).
        span = (self.today - self.first_day).days
        client_days = sorted(self.first_day + timedelta(days=int(span * rng.random() ** 0.8))
                             for _ in range(args.clients))
        used_ids = set()
        weights = [w for _, w in CATEGORIES]
        case_plans = []  # (opened, client index, category, heavy)
        for n, first in enumerate(client_days):
            born = first - timedelta(days=rng.randint(3 * 365, 16 * 365))
            number = self.national_id(born, rng.randint(0, 999))
            while number in used_ids:
                number = self.national_id(born, rng.randint(0, 999))
            used_ids.add(number)
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            handler = self.handlers[n % len(self.handlers)]
            place = rng.choice(PLACES)
            self.clients.append({
                "id": n + 1, "national_id": number, "given_name": given, "family_name": family,
                "name_lower": f"{given} {family}".lower(), "family_lower": family.lower(), "birth_date": born,
                "address": f"{place}vegen {rng.randint(1, 120)}", "postal_code": f"60{rng.randint(10, 99)}",
                "city": place, "organisation_id": rng.choice(self.orgs)["id"], "handler_id": handler,
                "created_at": at(first, rng)})
            heavy = args.heavy_every and n % args.heavy_every in (7, 8)  # two in a row: both handlers get one
            n_cases = 6 if heavy else rng.choice((1, 2, 2, 3, 3, 3, 3, 4, 4, 5))
            opened = first
            for k in range(n_cases):
                category = "referral" if k == 0 else rng.choices([c for c, _ in CATEGORIES], weights)[0]
                case_plans.append((opened, n, category, heavy))
                opened = min(self.today, opened + timedelta(days=rng.randint(30, 500)))
        case_plans.sort(key=lambda c: c[0])

        post_plans = []
        open_expert_cases = []
        for cid, (opened, n, category, heavy) in enumerate(case_plans, start=1):
            client = self.clients[n]
            handler = client["handler_id"]
            case = {"id": cid, "number": f"{opened.year}/{cid:05d}", "kind": "person", "category": category,
                    "title": rng.choice(CASE_TITLES[category]), "client_id": client["id"], "organisation_id": None,
                    "handler_id": handler, "access_group_id": None, "status": "open", "opened_on": opened,
                    "closed_on": None, "archive_ref": None, "created_at": at(opened, rng), "post_seq": 0,
                    "_registrar": rng.choice(self.registrars)}
            case["title_lower"] = case["title"].lower()
            self.cases.append(case)
            if rng.random() < 0.1:
                other = rng.choice([h for h in self.handlers if h != handler])
                self.cohandlers.append({"case_id": cid, "user_id": other})
            n_posts = 20 if heavy else rng.randint(3, 17)
            when = opened
            last = opened
            posts = []
            for k in range(n_posts):
                post_type = "I" if k == 0 else rng.choices("IUNX", (35, 25, 30, 10))[0]
                when = min(self.today, when + timedelta(days=rng.randint(0, 40)))
                posts.append(self._post(case, post_type, when, k))
                last = when
            replies = [p for p in posts if p["post_type"] == "U" and p["finalized_at"] is not None]
            for p in posts:
                if p["post_type"] == "I" and p["finalized_at"] is not None and rng.random() < 0.75:
                    reply = next((r for r in replies if r["finalized_at"] > p["finalized_at"]), None)
                    if reply is not None and rng.random() < 0.5:
                        p["write_off_method"], p["_reply"] = "BU", reply
                        p["written_off_at"] = reply["finalized_at"] + timedelta(minutes=rng.randint(1, 60))
                    else:
                        p["write_off_method"] = rng.choice(("TE", "TO"))
                        p["written_off_at"] = p["finalized_at"] + timedelta(days=rng.randint(0, 60),
                                                                            minutes=rng.randint(1, 600))
                    p["written_off_at"] = min(p["written_off_at"], self.now - timedelta(minutes=5))
                    p["written_off_by_id"] = handler
            post_plans.extend(posts)
            case["last_activity_at"] = datetime.combine(last, time(12), UTC)
            all_final = all(p["finalized_at"] is not None for p in posts)
            if all_final and (self.today - last).days > 200 and rng.random() < 0.85:
                case["status"] = "closed"
                case["closed_on"] = min(self.today, last + timedelta(days=rng.randint(5, 90)))
            elif category == "expert_assessment":
                open_expert_cases.append((case, last))

        # Posts waiting for the leader's approval: a fixed number, whatever the history's size.
        for case, last in rng.sample(open_expert_cases, min(args.pending_approvals, len(open_expert_cases))):
            when = max(last, self.today - timedelta(days=rng.randint(0, 10)))
            p = self._post(case, "U", when, 99, force_draft=True)
            p["title"] = "Sakkunnig vurdering"
            p["status"] = "awaiting_approval"
            p["approver_id"] = self.leader if rng.random() < 0.8 else self.deputy
            p["approval_requested_by_id"] = case["handler_id"]
            p["approval_requested_at"] = min(self.now, p["registered_at"] + timedelta(hours=rng.randint(1, 30)))
            p["_events"] = [("sent_to_approval", p["approval_requested_at"], case["handler_id"], p["approver_id"])]
            post_plans.append(p)

        post_plans.sort(key=lambda p: p["registered_at"])
        seq = defaultdict(int)
        for pid, p in enumerate(post_plans, start=1):
            p["id"] = pid
            seq[p["case_id"]] += 1
            p["seq"] = seq[p["case_id"]]
        for p in post_plans:
            reply = p.pop("_reply", None)
            p["write_off_reply_id"] = reply["id"] if reply else None
        for case in self.cases:
            case["post_seq"] = seq[case["id"]]
        self.posts = post_plans
        self._plan_jobs()
        self._plan_inbox()

    def _post(self, case: dict, post_type: str, when: date, k: int, force_draft: bool = False) -> dict:
        rng = self.rng
        handler = case["handler_id"]
        registered = at(when, rng)
        if registered > self.now:
            registered = self.now - timedelta(minutes=rng.randint(5, 600))
        title = rng.choice(POST_TITLES[post_type])
        p = {"case_id": case["id"], "post_type": post_type, "title": title, "title_lower": title.lower(),
             "document_date": when, "received_on": when if post_type == "I" else None,
             "sent_on": when if post_type == "U" else None, "registered_at": registered,
             "registered_after_downtime": rng.random() < 0.002, "held_back": False, "approver_id": None,
             "approval_requested_by_id": None, "approval_requested_at": None, "approved_by_id": None,
             "approved_at": None, "exempt": True, "legal_basis": "Offl. § 13 jf. fvl. § 13, 1. ledd nr. 1",
             "status": "draft", "created_by_id": handler, "finalized_at": None, "finalized_by_id": None,
             "correction_id": None, "written_off_at": None, "write_off_method": None, "written_off_by_id": None,
             "_events": [], "_attach": rng.random() < 0.2, "_file": rng.randrange(len(self.files))}
        if post_type in "IU":
            if rng.random() < 0.6:
                org = rng.choice(self.orgs)
                p["_corr"] = (org["name"], org["address"], None, org["org_number"], org["id"])
            else:
                client = self.clients[case["client_id"] - 1]
                p["_corr"] = (f"{rng.choice(GIVEN)} {client['family_name']}", client["address"], None, None, None)
        age = (self.today - when).days
        if not force_draft and (age > 14 or rng.random() < 0.5):
            final = min(self.now - timedelta(minutes=rng.randint(1, 300)),
                        registered + timedelta(hours=rng.randint(1, 72)))
            if post_type == "U" and case["category"] == "expert_assessment":
                approver = self.leader if rng.random() < 0.8 else self.deputy
                asked = registered + (final - registered) / 2
                p.update(approver_id=approver, approval_requested_by_id=handler, approval_requested_at=asked,
                         approved_by_id=approver, approved_at=final, finalized_by_id=approver)
                p["_events"] = [("sent_to_approval", asked, handler, approver), ("approved", final, approver, None)]
            else:
                p["finalized_by_id"] = handler
            p["finalized_at"] = final
        return p

    def _plan_jobs(self) -> None:
        """The outbox rows the services would have written, in time order."""
        rng = self.rng
        events = []  # (created_at, kind, case, post)
        for case in self.cases:
            events.append((case["created_at"], "case_created", case, None))
            if case["status"] == "closed":
                events.append((at(case["closed_on"], rng), "case_closed", case, None))
        for p in self.posts:
            if p["finalized_at"] is not None:
                events.append((p["finalized_at"], "post_finalized", self.cases[p["case_id"] - 1], p))
            if p["written_off_at"] is not None:
                events.append((p["written_off_at"], "post_written_off", self.cases[p["case_id"] - 1], p))
        events.sort(key=lambda e: e[0])
        from ppt_web.archive.message import EVENTS

        last_job = {}
        counters = defaultdict(int)
        for jid, (created, kind, case, post) in enumerate(events, start=1):
            year = created.year
            if kind == "case_created":
                counters[("sak", year)] += 1
                ref = {"mappe": {"saksaar": year, "sakssekvensnummer": counters[("sak", year)]}}
                message = f"Arkivert. Saksnummer {year}/{counters[('sak', year)]}."
            elif kind == "post_finalized":
                counters[("jp", year)] += 1
                ref = {"registrering": {"journalaar": year, "journalpostnummer": counters[("jp", year)]}}
                message = f"Arkivert. Journalpostnummer {year}/{counters[('jp', year)]}."
            else:
                ref, message = {}, "Arkivert."
            done = created + timedelta(seconds=rng.randint(1, 20), microseconds=rng.randint(0, 999999))
            self.jobs.append({
                "id": jid, "message_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "event": kind,
                "operation": EVENTS[kind], "case_id": case["id"], "post_id": post["id"] if post else None,
                "client_id": case["client_id"], "correction_id": None, "job_status": "done",
                "archive_status": "archived", "message": message, "attempts": 1, "next_attempt_at": None,
                "lease_until": None, "reply_deadline": None, "claimed_by": f"ppt-app.{1000 + jid % 7}",
                "notified_at": created, "after_job_id": last_job.get(case["id"]), "archive_ref": ref,
                "created_at": created, "finalized_on": created.date(), "done_at": min(done, self.now),
                "deleted_at": None, "deleted_by_id": None, "deleted_reason": None})
            last_job[case["id"]] = jid
        n = len(self.jobs)
        if not n:
            return
        # The newest few are still Ny (the worker has not got to them), one is being worked on.
        for job in self.jobs[-self.args.new_jobs:]:
            job.update(job_status="new", archive_status="new", message="", attempts=0, claimed_by=None,
                       done_at=None, archive_ref=None)
        if n > self.args.new_jobs:
            self.jobs[-self.args.new_jobs - 1].update(job_status="in_progress", archive_status="new", message="",
                                                       done_at=None, archive_ref=None,
                                                       lease_until=self.now + timedelta(minutes=5))
        # Failed: most of them recent (last 30 days), some old ones nobody has fixed.
        recent_from = next((i for i, j in enumerate(self.jobs) if j["created_at"] > self.now - timedelta(days=30)), n)
        pool_recent = list(range(recent_from, max(recent_from, n - self.args.new_jobs - 1)))
        pool_old = list(range(recent_from))
        k_recent = min(len(pool_recent), int(self.args.failed_jobs * 0.7))
        picked = rng.sample(pool_recent, k_recent) + rng.sample(pool_old, min(len(pool_old),
                                                                              self.args.failed_jobs - k_recent))
        for i in picked:
            job = self.jobs[i]
            job.update(archive_status="failed", message=rng.choice(FAILED_MESSAGES), archive_ref=None,
                       attempts=rng.choice((1, 1, 8)))
        for i in rng.sample(range(n - self.args.new_jobs - 1), min(self.args.deleted_jobs, n // 2)):
            job = self.jobs[i]
            if job["archive_status"] != "failed":
                job.update(archive_status="failed", message=rng.choice(FAILED_MESSAGES), archive_ref=None)
            job.update(deleted_at=job["created_at"] + timedelta(days=rng.randint(1, 20)),
                       deleted_by_id=self.users["konsulent"],
                       deleted_reason="Arkivert manuelt i arkivsystemet; jobben trengst ikkje.")
            job["deleted_at"] = min(job["deleted_at"], self.now)

    def _plan_inbox(self) -> None:
        """History: most incoming posts came through the inbox; now: --open-inbox items waiting."""
        rng = self.rng
        iid = 0
        incoming = [p for p in self.posts if p["post_type"] == "I" and p["finalized_at"] is not None]
        for p in incoming:
            if rng.random() < 0.5:
                continue
            iid += 1
            source = rng.choice(("scan", "svarinn", "svarinn"))
            arrived = p["registered_at"] - timedelta(minutes=rng.randint(5, 60 * 24))
            self.inbox.append(self._inbox_item(iid, source, arrived, "transferred", p))
            if rng.random() < 0.03:  # a duplicate or a blank page, refused by a person
                iid += 1
                self.inbox.append(self._inbox_item(iid, source, arrived, "rejected", None))
        opened = []
        for _ in range(self.args.open_inbox):
            iid += 1
            arrived = self.now - timedelta(minutes=rng.randint(1, 60 * 24 * 14))
            status = rng.choices(("new", "in_progress", "checked", "system_rejected"), (70, 15, 10, 5))[0]
            opened.append(self._inbox_item(iid, rng.choice(("scan", "svarinn", "upload")), arrived, status, None))
        opened.sort(key=lambda i: i["arrived_at"])
        self.inbox.sort(key=lambda i: i["arrived_at"])
        self.inbox.extend(opened)
        for n, item in enumerate(self.inbox, start=1):
            item["id"] = n

    def _inbox_item(self, iid: int, source: str, arrived: datetime, status: str, post: dict | None) -> dict:
        rng = self.rng
        sha, size, pages = self.files[rng.randrange(len(self.files))]
        sender = rng.choice(INBOX_SENDERS)
        title = post["title"] if post else rng.choice(POST_TITLES["I"])
        svarinn = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if source == "svarinn" else None
        key = f"svarinn:{svarinn}:1" if svarinn else f"{source}:bench/{iid}.pdf:{size}:{iid}"
        meta = {"title": title, "sender_name": sender, "document_date": arrived.date().isoformat(),
                "sent_at": arrived.isoformat()} if source == "svarinn" else {}
        item = {"source": source, "status": status, "arrived_at": arrived, "filename": f"{title}.pdf",
                "source_key": key, "svarinn_id": svarinn, "sha256": sha, "page_count": pages, "meta": meta,
                "parent_id": None, "first_page": None, "last_page": None, "claimed_by_id": None,
                "claimed_at": None, "reject_code": None, "reject_reason": "", "rejected_by_id": None,
                "rejected_at": None, "quarantine_name": None, "post_id": None, "document_id": None,
                "transferred_by_id": None, "transferred_at": None, "_post": post}
        clerk = rng.choice((self.users["sekretaer"], self.users["konsulent"]))
        if status in ("in_progress", "checked"):
            item.update(claimed_by_id=clerk, claimed_at=arrived + timedelta(minutes=rng.randint(1, 120)))
        elif status == "transferred":
            item.update(claimed_by_id=clerk, claimed_at=post["registered_at"] - timedelta(minutes=2),
                        transferred_by_id=clerk, transferred_at=post["registered_at"])
        elif status == "rejected":
            item.update(reject_code="duplicate", reject_reason="Same brev kom to gonger.", rejected_by_id=clerk,
                        rejected_at=arrived + timedelta(hours=2))
        elif status == "system_rejected":
            item.update(reject_code="encrypted", reject_reason="PDF-fila er kryptert eller passordverna.",
                        rejected_at=arrived, quarantine_name=f"quarantine/{iid}.pdf")
        return item

    # -- writing --------------------------------------------------------------------------------

    def write(self, engine, tables, timer: Timer, sqlite: bool) -> None:
        from sqlalchemy import text

        batch = self.args.batch

        def chunks(rows):
            for i in range(0, len(rows), batch):
                yield rows[i:i + batch]

        def clean(row):
            return {k: v for k, v in row.items() if not k.startswith("_")}

        def simple(name, rows):
            t0 = _time.monotonic()
            for part in chunks(rows):
                with engine.begin() as conn:
                    insert(conn, tables[name], [clean(r) for r in part], timer)
            print(f"  {name}: {len(rows)} rows in {_time.monotonic() - t0:.1f} s", flush=True)

        simple("organisation", self.orgs)
        simple("client", self.clients)
        simple("case", self.cases)
        simple("case_cohandler", self.cohandlers)

        # Posts with their correspondents, documents and events; finalized ones go in as drafts and
        # are flipped once their documents are in (the triggers refuse documents of a finalized post).
        t0 = _time.monotonic()
        doc_id = corr_id = ev_id = 0
        doc_of_post = {}
        jp = tables["journal_post"]
        for part in chunks(self.posts):
            posts, corrs, docs, events = [], [], [], []
            for p in part:
                row = clean(p)
                row["write_off_reply_id"] = None  # set below, once the reply is in
                posts.append(row)
                if "_corr" in p:
                    name, address, nid, orgno, org_id = p["_corr"]
                    corr_id += 1
                    corrs.append({"id": corr_id, "post_id": p["id"],
                                  "role": "sender" if p["post_type"] == "I" else "recipient",
                                  "name": name, "address": address, "national_id": nid, "org_number": orgno,
                                  "organisation_id": org_id})
                sha = self.files[p["_file"]][0]
                doc_id += 1
                doc_of_post[p["id"]] = doc_id
                docs.append({"id": doc_id, "post_id": p["id"], "role": "main", "position": 0,
                             "filename": f"{p['title']}.pdf", "sha256": sha})
                if p["_attach"]:
                    doc_id += 1
                    docs.append({"id": doc_id, "post_id": p["id"], "role": "attachment", "position": 1,
                                 "filename": "Vedlegg.pdf",
                                 "sha256": self.files[(p["_file"] + 5) % len(self.files)][0]})
                for kind, when, actor, to_user in p["_events"]:
                    ev_id += 1
                    events.append({"id": ev_id, "post_id": p["id"], "at": when, "actor_id": actor, "kind": kind,
                                   "to_user_id": to_user, "comment": "", "detail": {}})
            lo, hi = part[0]["id"], part[-1]["id"]
            with engine.begin() as conn:
                insert(conn, jp, posts, timer)
                insert(conn, tables["correspondent"], corrs, timer)
                insert(conn, tables["document"], docs, timer)
                insert(conn, tables["post_event"], events, timer)
                t1 = _time.perf_counter()
                conn.execute(text("UPDATE journal_post SET status = 'finalized' WHERE id BETWEEN :lo AND :hi "
                                  "AND finalized_at IS NOT NULL AND status = 'draft'"), {"lo": lo, "hi": hi})
                timer.add("journal_post", 0, _time.perf_counter() - t1)
        # Write-offs by a reply point at a later post: set once every post is in (as the service does,
        # by an UPDATE of the incoming post after the reply exists).
        replies = [{"i": p["id"], "r": p["write_off_reply_id"]} for p in self.posts if p["write_off_reply_id"]]
        for part in chunks(replies):
            with engine.begin() as conn:
                t1 = _time.perf_counter()
                conn.execute(text("UPDATE journal_post SET write_off_reply_id = :r WHERE id = :i"), part)
                timer.add("journal_post", 0, _time.perf_counter() - t1)
        print(f"  journal_post (+ correspondent, document, post_event): {len(self.posts)} posts in "
              f"{_time.monotonic() - t0:.1f} s", flush=True)

        simple("archive_job", self.jobs)

        for item in self.inbox:
            post = item.pop("_post")
            if post is not None:
                item["post_id"], item["document_id"] = post["id"], doc_of_post[post["id"]]
        simple("inbox_item", self.inbox)

        if not sqlite:
            with engine.begin() as conn:
                for table in ("organisation", "client", "case", "journal_post", "correspondent", "document",
                              "post_event", "archive_job", "inbox_item"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                      f"(SELECT coalesce(max(id), 1) FROM \"{table}\"))"))


if __name__ == "__main__":
    raise SystemExit(main())
