"""Scratch fuzz (review B): odd input on every route; report 500s and refused requests that saved rows."""
from __future__ import annotations

import io
import re
import traceback

from sqlalchemy import func, inspect, select, text

from ppt_web.extensions import db

from . import builders
from .conftest import sign_in, user

HUGE = str(2**63)
REPORT = "/tmp/review_B_fuzz_report.txt"
found: list[str] = []
IGNORED_TABLES = {"activity_log", "alembic_version", "form_token", "user_session", "notification"}


def counts():
    names = inspect(db.engine).get_table_names()
    out = {}
    for n in names:
        if n in IGNORED_TABLES:
            continue
        out[n] = db.session.execute(text(f'SELECT count(*) FROM "{n}"')).scalar()
    db.session.rollback()
    return out


def record(msg):
    found.append(msg)
    with open(REPORT, "a") as fh:
        fh.write(msg + "\n\n")


def hit(web, who, method, url, check_rows=True, **kw):
    before = counts() if (check_rows and method == "POST") else None
    try:
        r = web.open(url, method=method, **kw)
    except Exception as exc:  # PROPAGATE_EXCEPTIONS: a 500
        tb = traceback.format_exc().strip().splitlines()
        record(f"500 {who} {method} {url!r} kw={ {k: (v if len(repr(v)) < 300 else repr(v)[:300]) for k, v in kw.items()} }\n"
               + "\n".join(tb[-14:]))
        db.session.rollback()
        return None
    if r.status_code >= 500:
        record(f"{r.status_code} {who} {method} {url!r} {kw}")
    if before is not None and r.status_code >= 400:
        after = counts()
        diff = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
        if diff:
            record(f"ROWS-ON-ERROR {r.status_code} {who} {method} {url!r} {kw}: {diff}")
    return r


def test_fuzz(app, ctx):
    open(REPORT, "w").close()
    from .test_letters import case_with_recipients, template

    cl = builders.client()
    case = builders.case(client_obj=cl)
    draft = builders.post(case, title="Utkast")
    incoming = builders.finalized_post(case, post_type="I", correspondent="Skule", title="Spørsmål")
    tmpl = template()
    lcase = case_with_recipients()
    from ppt_web.letters import service as letters
    choices = letters.recipient_choices(user("radgjevar1"), lcase)
    letter_post = letters.new_letter(user("radgjevar1"), lcase.id, tmpl.id, [c.key for c in choices][:1])
    db.session.commit()
    from ppt_web.models import AccessGroup, Document, Organisation, Role
    doc = db.session.scalar(select(Document).limit(1))
    group = db.session.scalar(select(AccessGroup).limit(1))
    role = db.session.scalar(select(Role).limit(1))
    org = db.session.scalar(select(Organisation).limit(1))
    ids = {"case_id": lcase.id, "post_id": letter_post.id, "client_id": cl.id, "document_id": doc.id,
           "group_id": group.id, "role_id": role.id, "user_id": user("radgjevar2").id, "org_id": org.id,
           "template_id": tmpl.id, "number": 1, "page": 1, "item_id": 1, "job_id": 1, "dispatch_id": 1,
           "notification_id": 1, "original_id": 1, "point": 1}
    db.session.commit()

    users = ["admin", "leiar", "sekretaer", "radgjevar1", "superbrukar"]
    webs = {}
    for u in users:
        w = app.test_client()
        assert sign_in(w, u).status_code == 302
        webs[u] = w
    anon = app.test_client()

    # postreg item via upload
    sek = webs["sekretaer"]
    r = hit(sek, "sekretaer", "POST", "/post-registration/upload",
            data={"file": (io.BytesIO(builders.make_pdf()), "brev.pdf")}, content_type="multipart/form-data")
    m = re.search(r"/post-registration/(\d+)", r.headers.get("Location", "")) if r is not None else None
    if m:
        ids["item_id"] = int(m.group(1))

    rules = [r for r in app.url_map.iter_rules() if r.endpoint not in ("static",) and "reference" not in r.endpoint]
    odd_queries = ["page=-1", "page=abc", f"page={HUGE}", "page=1e9", "date_from=2026-13-45", "date_to=45.13.2026",
                   "from=2026-13-45&to=x", "sort=unknown", "which=zzz", "view=zzz", "view=destroyed&page=-5",
                   "status=zzz", "type=ZZ", "type=" + "U" * 5000, "q=" + "a" * 20000, "before=-1", f"before={HUGE}",
                   "handler=abc", f"handler={HUGE}", "client_id=abc", f"client_id={HUGE}", "period=xyz",
                   "period=year&year=99999", "period=year&year=-1", "period=month&year=2026&month=13",
                   "period=quarter&year=2026&quarter=9", "period=range&from=01.01.2026&to=01.01.2020",
                   "threshold=-1", "threshold=99999999999999999999", "team=abc", f"team={HUGE}", "beacon=1",
                   "next=//evil.example", "all=1", "q=%ED%A0%80", "actor=%E2%80%AE%E2%80%8F", "outcome=x" * 10,
                   "page=%EF%BC%91", "page=\u0661".encode().decode(), "event=" + "x" * 500,
                   "page=1&page=2", "period=month&month=0&year=2026"]
    hx_variants = [{}, {"HX-Request": "true"}, {"HX-Request": "true", "HX-Target": "activity-rows"},
                   {"HX-Request": "true", "HX-Target": "inbox-rows"}, {"HX-Request": "true", "HX-Target": "archive-rows"},
                   {"HX-Request": "true", "HX-Boosted": "true"}]
    langs = ["", "*", "xx-YY;q=abc", "nn;q=2, en;q=-1", "zh-Hant-TW", "nb-NO,nb;q=0.9", "\u202e", "a" * 5000, ";;;,,,"]

    def urls_for(rule, variant):
        out = []
        vals = {}
        for arg in rule.arguments:
            conv = rule._converters[arg]
            if type(conv).__name__ in ("BoundedInt", "IntegerConverter"):
                v = {"real": ids.get(arg, 1), "zero": 0, "big": 2**31 - 1, "past": 2**31, "huge": 2**63, "missing": 999999}[variant]
                vals[arg] = v
            else:
                vals[arg] = {"real": "x", "zero": "%00", "big": "a" * 3000, "past": "%ED%A0%80",
                             "huge": "..%2F..%2Fetc", "missing": "2026Q9"}[variant]
        path = rule.rule
        for k, v in vals.items():
            path = re.sub(r"<[^>]*:?%s>" % k, str(v), path)
        out.append(path)
        return out

    # special string paths with their plausible values
    extra_paths = ["/statistics/waiting/2026Q1", "/statistics/waiting/2026Q5", "/statistics/waiting/0000Q1",
                   "/statistics/waiting/9999Q4", "/statistics/waiting/2026-Q1", "/statistics/waiting/%00",
                   "/statistics/waiting/Q1", f"/statistics/waiting/{HUGE}Q1",
                   "/statistics/waiting/2026Q1?period=year&year=2026", "/statistics/waiting/2026Q1?threshold=abc"]
    from ppt_web.statistics import service as stats
    try:
        keys = [f.key for f in stats.figures(user("leiar"), None)] if False else []
    except Exception:
        keys = []
    src = open("ppt_web/statistics/service.py").read()
    keys = sorted(set(re.findall(r'key="([a-z_]+)"', src)) | set(re.findall(r'"([a-z_]+)":\s*_l?\(', src)))[:40]
    for k in keys + ["nope", "%00", "a" * 300]:
        extra_paths += [f"/statistics/{k}.csv", f"/statistics/{k}.csv?period=year&year=1900",
                        f"/statistics/{k}.csv?period=range&from=01.01.2020&to=31.12.2029"]
    extra_paths += [f"/admin/roles/{role.id}/permissions/{c}" for c in ("%00", "x" * 500, "journal", "%ED%A0%80")]

    gets = [r for r in rules if "GET" in r.methods]
    posts = [r for r in rules if "POST" in r.methods and r.endpoint != "auth.logout"]

    # 1. GETs
    for u in users:
        web = webs[u]
        for rule in gets:
            for variant in ("real", "zero", "past", "huge", "missing", "big"):
                for path in urls_for(rule, variant):
                    hit(web, u, "GET", path)
                    if variant == "real":
                        for q in odd_queries:
                            hit(web, u, "GET", path + "?" + q)
                        for hx in hx_variants[1:]:
                            hit(web, u, "GET", path, headers=hx)
                            hit(web, u, "GET", path + "?page=abc&before=-1", headers=hx)
        for p in extra_paths:
            hit(web, u, "GET", p)
            hit(web, u, "POST", p)
        for lang in langs:
            hit(web, u, "GET", "/", headers={"Accept-Language": lang})
            hit(web, u, "GET", f"/cases/{lcase.id}", headers={"Accept-Language": lang})
    for rule in gets:
        hit(anon, "anon", "GET", urls_for(rule, "real")[0])
        hit(anon, "anon", "GET", urls_for(rule, "huge")[0])
    for lang in langs:
        hit(anon, "anon", "GET", "/login", headers={"Accept-Language": lang})

    # collect form field names from GET pages
    field_names: dict[str, set] = {}
    for rule in rules:
        if "GET" in rule.methods and "POST" in rule.methods:
            for u in ("radgjevar1", "leiar", "admin", "sekretaer"):
                path = urls_for(rule, "real")[0]
                r = webs[u].get(path)
                if r.status_code == 200:
                    field_names.setdefault(rule.rule, set()).update(re.findall(r'name="([^"]+)"', r.get_data(as_text=True)))
    generic = {"user_id", "role_id", "group_id", "active", "granted", "key", "value", "reset", "confirm", "reason",
               "confirmation", "checked", "client_q", "method", "reply_post_id", "version", "body", "recipients",
               "sent_on", "write_off_method", "seen", "template_id", "all", "q", "page", "logo", "title",
               "document_date", "post_type", "approver_id", "comment", "pages", "parts", "case_id"}
    odd_values = ["", "-1", "0", HUGE, "abc", "\u202e\u200f", "a" * 70000, "45.13.2026", "31.02.2026", "01.01.0001",
                  "31.12.9999", "1e5", "\u0661\u0662", " ", "None", "[]", "{}", "true", "%s%n", "{{7*7}}",
                  "<script>alert(1)</script>"]

    # 2. POSTs: empty, odd values, duplicated fields, raw surrogate body
    for u in users:
        web = webs[u]
        for rule in posts:
            path = urls_for(rule, "real")[0]
            names = field_names.get(rule.rule, set()) | generic
            names.discard("csrf_token")
            hit(web, u, "POST", path)
            hit(web, u, "POST", path, headers={"HX-Request": "true"})
            for v in odd_values:
                data = {n: v for n in names}
                hit(web, u, "POST", path, data=data)
            hit(web, u, "POST", path, data=[(n, x) for n in names for x in ("1", "2", "")])
            hit(web, u, "POST", path, data=b"title=%ED%A0%80&body=%ED%A0%80&q=%ED%A0%80&version=%ED%A0%80",
                content_type="application/x-www-form-urlencoded")
            hit(web, u, "POST", path, data=b"\xff\xfe garbage", content_type="application/x-www-form-urlencoded")
            hit(web, u, "POST", path, data=b"{}", content_type="application/json")
            hit(web, u, "POST", path, data=b"--zz\r\nbroken", content_type="multipart/form-data; boundary=zz")
            for variant in ("zero", "past", "huge", "missing"):
                hit(web, u, "POST", urls_for(rule, variant)[0], data={n: "1" for n in names})
    for rule in posts:
        hit(anon, "anon", "POST", urls_for(rule, "real")[0], data={"x": "1"})

    # 3. files
    bad_files = [b"", b"not a pdf", b"%PDF-1.4\n garbage \n%%EOF", b"%PDF-" + b"\x00" * 5000,
                 builders.make_pdf()[:200], b"\x89PNG\r\n\x1a\n" + b"0" * 100]
    file_routes = ["/post-registration/upload", f"/cases/{case.id}/posts/new", "/templates/letterhead",
                   f"/posts/{draft.id}/edit", f"/posts/{incoming.id}/correct"]
    for u in ("sekretaer", "radgjevar1", "admin", "leiar"):
        web = webs[u]
        for fr in file_routes:
            names = field_names.get(re.sub(r"\d+", "x", fr), set())
            for i, blob in enumerate(bad_files):
                for fname in ("x.pdf", "", "a\x00b.pdf", "../../etc/passwd", "\u202egpj.pdf", "a" * 1000 + ".pdf"):
                    data = {"post_type": "N", "title": "T", "document_date": "01.01.2026", "file": (io.BytesIO(blob), fname),
                            "main_document": (io.BytesIO(blob), fname), "attachments": (io.BytesIO(blob), fname),
                            "logo": (io.BytesIO(blob), fname)}
                    hit(web, u, "POST", fr, data=data, content_type="multipart/form-data")

    # 4. CSRF on
    app.config["WTF_CSRF_ENABLED"] = True
    for u in ("radgjevar1", "admin"):
        web = webs[u]
        for rule in posts:
            path = urls_for(rule, "real")[0]
            hit(web, u, "POST", path, data={"csrf_token": "bogus"})
            hit(web, u, "POST", path, data={"csrf_token": "\u202e"}, headers={"X-CSRFToken": "a" * 5000, "HX-Request": "true"})
    hit(anon, "anon", "POST", "/login", data={"username": "x", "password": "y", "csrf_token": "zz"})
    app.config["WTF_CSRF_ENABLED"] = False
    # login oddities
    for uname in ("", "a" * 100000, "\u202eadmin", "admin\u0000", "%ED%A0%80"):
        hit(app.test_client(), "anon", "POST", "/login", data={"username": uname, "password": uname})
    hit(app.test_client(), "anon", "POST", "/login", data=[("username", "admin"), ("username", "leiar"),
                                                           ("password", "x"), ("password", "y")])
    print("\n".join(found))
    assert not found, f"{len(found)} findings, see {REPORT}"
