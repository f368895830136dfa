"""Object access for every route shape × every role.

POLICY below says, for every rule × method of app.url_map, what it needs: public, signed in, or a permission
code, and which of its URL parameters name an object under the access scope (ppt_web/auth/scope.py).
test_policy_table_covers_exactly_the_apps_routes fails when a route is added or removed without the table
following, and test_policy_table_agrees_with_the_views when a row's codes or parameters differ from the view's.

The probes sign in as each demo user (one or two per role, ppt_web/cli.py DEMO_USERS) and as nobody, and
request every rule × method with its URL parameters filled with an object the user may see, another
handler's object, an id that does not exist, and hostile values (0 and MAX_ID; odd strings where the
converter takes strings). Each answer must be what the policy says:

- not signed in: 302 to /login (public routes answer);
- a permission the route needs and the user lacks: 403 and an access_denied row in the activity log;
- another handler's case, client, post, document or dispatch to a user without search_all, or another
  user's notification to anyone: 404 and a not_found row;
- an id that does not exist (or 0, MAX_ID): 404;
- otherwise the page (GET, or a POST that changes nothing). A POST that would change data when allowed is
  not sent: only refusals are, so the probes change nothing, which each test checks at its end (a digest of
  every table but the activity log and the sign-in bookkeeping).

Never a 500, and never a distinctive string (client name, case or post title, national id, recipient,
notification) of an object the user may not see, in any answer; no object's data at all in a refusal.
Values the router refuses alike for everyone (-1, 2**31, 20 digits, text: 404) are a second test, marked slow.
Tests run with WTF_CSRF_ENABLED off (conftest), so POSTs need no token. pytest -s prints the figures.

To add a route: one line in POLICY, public()/signed_in()/needs(codes...) with each URL parameter's object
kind (case, client, post, document, dispatch, notification, user, role, group, org, job, item, original,
point, page, perm_code, field, file); a new kind needs objects in build_world. Where the app answers a
missing id otherwise than 404 on purpose, say so with missing={param: {status}} and a comment.
"""
from __future__ import annotations

import hashlib
import io
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import func, select

from ppt_web.cli import DEMO_USERS
from ppt_web.extensions import db
from ppt_web.formtools import MAX_ID

from . import builders
from .conftest import sign_in, user

# ---------------------------------------------------------------------------------------------------------
# The policy table
# ---------------------------------------------------------------------------------------------------------

PUBLIC = "public"
SIGNED_IN = "signed in"

# Object kinds of URL parameters. Scoped: a user without search_all sees only their own and co-handled
# cases and what hangs on them (clients, posts, documents, dispatches); a notification is only its owner's.
SCOPED = {"case", "client", "post", "document", "dispatch"}
OWN_ONLY = {"notification"}
STRINGS = {"perm_code", "field", "file", "figure_key", "quarter"}  # the converter takes text


@dataclass(frozen=True)
class Policy:
    needs: str | tuple[str, ...]  # PUBLIC, SIGNED_IN, or permission codes (any one is enough)
    params: dict[str, str] = field(default_factory=dict)  # URL parameter -> object kind
    query: dict[str, str] = field(default_factory=dict)  # query-string parameter -> object kind (GET only)
    data: dict[str, str] = field(default_factory=dict)  # form data sent with a POST
    ok: frozenset[int] = frozenset({200})  # what an allowed request answers
    writes: bool | None = None  # whether an allowed request changes data; None: every method but GET does
    missing: dict[str, frozenset[int]] = field(default_factory=dict)  # param -> answer to a missing id, if not 404
    # Parameters looked up only inside the parent object of the URL: another's id answers as a missing one.
    nested: frozenset[str] = frozenset()
    also: tuple[str, ...] = ()  # codes needed as well, every one (the view's further check, permission_required)


def public(ok=(200,), writes=None, data=None, **params) -> Policy:
    return Policy(PUBLIC, params, ok=frozenset(ok), writes=writes, data=data or {})


def signed_in(ok=(200,), writes=None, **params) -> Policy:
    return Policy(SIGNED_IN, params, ok=frozenset(ok), writes=writes)


def needs(*codes: str, ok=(200,), writes=None, data=None, query=None, missing=None, nested=(), also=(),
          **params) -> Policy:
    """A permission code (any one of codes, and every one of also); form data values "@kind" are the id of a
    seen object of that kind."""
    return Policy(tuple(codes), params, query or {}, data or {}, frozenset(ok), writes,
                  {k: frozenset(v) for k, v in (missing or {}).items()}, frozenset(nested), tuple(also))


def shut_out(world, username: str, policy: Policy) -> bool:
    """A signed-in user the policy's permissions refuse (403)."""
    return policy.needs not in (PUBLIC, SIGNED_IN) and (
        not set(policy.needs) & world.can[username] or not set(policy.also) <= world.can[username])


SEARCH = ("search_own", "search_all")
EDIT_POST = ("journal", "fix_misregistered")
APPROVE = ("approve", "journal")

POLICY: dict[tuple[str, str], Policy] = {
    # public
    ("static", "GET"): public(filename="file"),
    ("auth.login", "GET"): public(ok=(200, 302)),
    ("auth.login", "POST"): public(ok=(302, 401), writes=False),  # empty form: refused; signed in: redirect
    ("main.healthz", "GET"): public(),
    ("main.readyz", "GET"): public(ok=(200, 503)),  # no worker in the tests
    ("main.metrics", "GET"): public(),
    # signed in, nothing more
    ("main.index", "GET"): signed_in(),
    ("main.notifications", "GET"): signed_in(),
    ("main.open_notification", "POST"): signed_in(notification_id="notification"),
    ("main.read_all_notifications", "POST"): signed_in(),
    ("auth.logout", "POST"): signed_in(),
    ("auth.profile", "GET"): signed_in(),
    ("auth.profile", "POST"): signed_in(),
    ("auth.change_password", "GET"): signed_in(),
    ("auth.change_password", "POST"): signed_in(ok=(422,), writes=False),  # empty form: refused
    # search, cases, posts, documents
    ("search.search", "GET"): needs(*SEARCH),
    ("search.search", "POST"): needs(*SEARCH, writes=False, data={"q": "Bravo"}),
    ("cases.worklist", "GET"): needs(*SEARCH),
    ("cases.outstanding", "GET"): needs(*SEARCH),
    ("cases.approvals", "GET"): needs(*APPROVE),
    ("cases.new_case", "GET"): needs("register_case", "journal", query={"client_id": "client"}),
    ("cases.new_case", "POST"): needs("register_case", "journal"),
    ("cases.case", "GET"): needs(*SEARCH, case_id="case"),
    ("cases.close_case", "GET"): needs("close_case", case_id="case"),
    ("cases.close_case", "POST"): needs("close_case", case_id="case"),
    ("cases.reopen_case", "POST"): needs("close_case", case_id="case"),
    ("cases.add_cohandler", "POST"): needs("add_cohandler", case_id="case", data={"user_id": "@user"}),
    # Taking away someone who is not a co-handler (or no one) changes nothing and goes back to the case.
    ("cases.remove_cohandler", "POST"): needs("add_cohandler", case_id="case", user_id="user",
                                              missing={"user_id": {302}}),
    ("cases.change_handler", "POST"): needs("change_handler", case_id="case", data={"user_id": "@user"}),
    ("cases.correct_case", "GET"): needs("correct_metadata", case_id="case"),
    ("cases.correct_case", "POST"): needs("correct_metadata", case_id="case"),
    ("cases.new_post", "GET"): needs("journal", case_id="case"),
    ("cases.new_post", "POST"): needs("journal", case_id="case"),
    ("archive.case_copy", "GET"): needs(*SEARCH, case_id="case"),
    ("cases.post", "GET"): needs(*SEARCH, post_id="post"),
    ("cases.edit_post", "GET"): needs(*EDIT_POST, post_id="post"),
    ("cases.edit_post", "POST"): needs(*EDIT_POST, post_id="post"),
    # The document is looked up among the post's own: another's or a missing one is "not on this post" (422).
    ("cases.remove_document", "POST"): needs(*EDIT_POST, post_id="post", document_id="document",
                                             nested=("document_id",), missing={"document_id": {422}}),
    ("cases.finalize", "POST"): needs("journal", post_id="post"),
    ("cases.delete_post", "POST"): needs("fix_misregistered", post_id="post"),
    # A post that takes no correction (a draft, a dispatched post): the post page with the reason.
    ("cases.correct", "GET"): needs("correct_metadata", ok=(200, 302), post_id="post"),
    ("cases.correct", "POST"): needs("correct_metadata", post_id="post"),
    ("cases.write_off", "POST"): needs("journal", post_id="post", data={"method": "TE"}),
    ("cases.send_for_approval", "POST"): needs("journal", post_id="post"),
    ("cases.approve", "POST"): needs(*APPROVE, post_id="post"),
    ("cases.return_for_changes", "POST"): needs(*APPROVE, post_id="post"),
    ("cases.sign", "POST"): needs("esign", post_id="post"),
    # the leader's decision on a post held back from access (a post that is not held back: "nothing to decide")
    ("cases.held_back", "GET"): needs("approve"),
    ("cases.hold_back_decision", "GET"): needs("approve", post_id="post"),
    ("cases.release_held_back", "POST"): needs("approve", post_id="post"),
    ("cases.keep_held_back", "POST"): needs("approve", post_id="post"),
    ("cases.document_page", "GET"): needs(*SEARCH, document_id="document", page="page",
                                          missing={"page": {409}}),  # "no preview of this page"
    ("cases.validate_post_field", "POST"): needs("journal", field="field", writes=False, data={"title": "x"}),
    ("cases.document", "GET"): needs(*SEARCH, document_id="document"),
    # clients and organisations
    ("clients.new_client", "GET"): needs("register_case", "journal"),
    ("clients.new_client", "POST"): needs("register_case", "journal"),
    ("clients.folder", "GET"): needs(*SEARCH, client_id="client"),
    ("clients.edit_client", "GET"): needs("register_case", "journal", client_id="client"),
    ("clients.edit_client", "POST"): needs("register_case", "journal", client_id="client"),
    ("clients.reveal_national_id", "POST"): needs(*SEARCH, client_id="client", writes=False),  # logged only
    ("clients.organisations", "GET"): needs(*SEARCH),
    ("clients.organisations", "POST"): needs(*SEARCH),
    ("clients.edit_organisation", "GET"): needs("manage_orgs", org_id="org"),
    ("clients.edit_organisation", "POST"): needs("manage_orgs", org_id="org"),
    # dispatch
    ("dispatch.failures", "GET"): needs("send"),
    ("dispatch.dispatch_post", "POST"): needs("send", post_id="post"),
    ("cases.sent_on_paper", "POST"): needs("send", post_id="post", data={"sent_on": "2026-01-01"}),
    ("dispatch.retry", "POST"): needs("send", dispatch_id="dispatch"),
    # post registration
    ("postreg.inbox", "GET"): needs("distribute_mail"),
    ("postreg.upload", "POST"): needs("distribute_mail"),
    ("postreg.item", "GET"): needs("distribute_mail", item_id="item"),
    ("postreg.item_file", "GET"): needs("distribute_mail", item_id="item"),
    ("postreg.page_image", "GET"): needs("distribute_mail", item_id="item", page="page",
                                         missing={"page": {409}}),  # "no preview of this page"
    ("postreg.check", "POST"): needs("distribute_mail", item_id="item", point="point",
                                     missing={"point": {422}}),  # "that check does not apply"
    ("postreg.choose_client", "GET"): needs("distribute_mail", item_id="item", client_id="client"),
    # The client search does not load the item: its id only goes into the result links.
    ("postreg.find_clients", "POST"): needs("distribute_mail", item_id="item", writes=False,
                                            data={"client_q": "Alfa"}, missing={"item_id": {200}}),
    ("postreg.take_over", "POST"): needs("distribute_mail", item_id="item"),
    ("postreg.transfer", "POST"): needs("distribute_mail", item_id="item"),
    ("postreg.split", "POST"): needs("distribute_mail", item_id="item"),
    ("postreg.reject", "POST"): needs("distribute_mail", item_id="item"),
    ("postreg.refusal_seen", "POST"): needs("distribute_mail", item_id="item"),
    ("postreg.paper_originals", "GET"): needs("distribute_mail"),
    # The route shows every refusal of the service as a message on the list: a missing one too (no 404).
    ("postreg.paper_destroyed", "POST"): needs("distribute_mail", original_id="original",
                                               missing={"original_id": {302}}),
    # archive log
    ("archive.log", "GET"): needs("archive_log"),
    ("archive.retry", "POST"): needs("archive_retry", job_id="job"),
    ("archive.retry_all", "POST"): needs("archive_retry", writes=False),  # without confirm=1: the question only
    ("archive.delete", "GET"): needs("archive_delete", job_id="job"),
    ("archive.delete", "POST"): needs("archive_delete", job_id="job"),
    ("archive.restore", "POST"): needs("archive_delete", job_id="job"),
    # statistics (a CSV adds an activity-log row only, which the probes' digest leaves out)
    ("statistics.index", "GET"): needs("statistics"),
    ("statistics.print_view", "GET"): needs("statistics"),
    ("statistics.csv", "GET"): needs("statistics", key="figure_key"),
    ("statistics.waiting_cases", "GET"): needs("statistics", quarter="quarter"),
    # activity log and administration
    ("activity.log", "GET"): needs("activity_log", also=("search_all",)),
    ("admin.users", "GET"): needs("assign_roles", "manage_groups"),
    ("admin.new_user", "GET"): needs("assign_roles"),
    ("admin.new_user", "POST"): needs("assign_roles"),
    ("admin.edit_user", "GET"): needs("assign_roles", user_id="user"),
    ("admin.edit_user", "POST"): needs("assign_roles", user_id="user"),
    ("admin.set_active", "POST"): needs("assign_roles", user_id="user"),
    ("admin.add_role", "POST"): needs("assign_roles", user_id="user", data={"role_id": "@role"}),
    ("admin.remove_role", "POST"): needs("assign_roles", user_id="user", role_id="role"),
    ("admin.add_group", "POST"): needs("manage_groups", user_id="user", data={"group_id": "@group"}),
    ("admin.remove_group", "POST"): needs("manage_groups", user_id="user", group_id="group"),
    ("admin.groups", "GET"): needs("manage_groups"),
    ("admin.groups", "POST"): needs("manage_groups"),
    ("admin.set_coordinator", "POST"): needs("manage_groups", group_id="group", data={"user_id": "@user"}),
    ("admin.roles", "GET"): needs("sysadmin_view"),
    ("admin.set_role_permission", "POST"): needs("sysadmin_edit_all", role_id="role", code="perm_code"),
    ("admin.archive_settings", "GET"): needs("sysadmin_view"),
    ("admin.save_archive_settings", "POST"): needs("sysadmin_edit"),
    ("admin.settings", "GET"): needs("sysadmin_view"),
    ("admin.save_setting", "POST"): needs("sysadmin_edit"),
    ("admin.add_group_role", "POST"): needs("manage_groups", group_id="group", data={"role_id": "@role"}),
    ("admin.remove_group_role", "POST"): needs("manage_groups", group_id="group", role_id="role"),
    # letter templates and the letterhead (a version number is probed with the "page" kind: 1 exists)
    ("letters.admin_templates", "GET"): needs("manage_templates", ok=(302,)),
    ("letters.templates", "GET"): needs("manage_templates"),
    ("letters.new_template", "GET"): needs("manage_templates"),
    ("letters.new_template", "POST"): needs("manage_templates"),
    ("letters.edit_template", "GET"): needs("manage_templates", template_id="template"),
    ("letters.edit_template", "POST"): needs("manage_templates", template_id="template"),
    ("letters.copy_template", "POST"): needs("manage_templates", template_id="template"),
    ("letters.retire_template", "POST"): needs("manage_templates", template_id="template"),
    ("letters.reinstate_template", "POST"): needs("manage_templates", template_id="template"),
    ("letters.template_version", "GET"): needs("manage_templates", template_id="template", number="page"),
    ("letters.letterhead_settings", "GET"): needs("manage_templates"),
    ("letters.letterhead_settings", "POST"): needs("manage_templates"),
    # letters written in the app (the world's posts have no letter: the letter pages lead to the post)
    ("letters.new_letter", "GET"): needs("journal", case_id="case"),
    ("letters.new_letter", "POST"): needs("journal", case_id="case"),
    ("letters.letter", "GET"): needs(*SEARCH, post_id="post", ok=(302,)),
    ("letters.save_letter", "POST"): needs(*EDIT_POST, post_id="post"),
    ("letters.preview", "GET"): needs(*SEARCH, post_id="post", ok=(302,)),
}

def _methods(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_policy_table_covers_exactly_the_apps_routes(app):
    """A route missing from POLICY fails here, and so does a row for a route that is gone."""
    routes = {(rule.endpoint, m) for rule in app.url_map.iter_rules() for m in _methods(rule)}
    missing, stale = sorted(routes - set(POLICY)), sorted(set(POLICY) - routes)
    assert not missing and not stale, (
        f"routes without a row in POLICY (add one: public/signed_in/needs(...) with its object "
        f"parameters): {missing}; rows for routes that are gone: {stale}")


def test_policy_table_agrees_with_the_views(app):
    """The table's permissions and parameters are the views' own (permission_required, @public, the rule)."""
    from ppt_web.security import is_public

    wrong = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            view = app.view_functions[rule.endpoint]
            codes = tuple(getattr(view, "_ppt_permissions", ()))
            for method in _methods(rule):
                policy = POLICY.get((rule.endpoint, method))
                if policy is None:
                    continue  # the coverage test above names it
                if policy.needs == PUBLIC:
                    said = is_public(rule.endpoint)
                elif policy.needs == SIGNED_IN:
                    said = not codes and not is_public(rule.endpoint)
                else:  # a further check refuses exactly those who lack one of also
                    said = set(policy.needs) == set(codes) and bool(policy.also) == bool(getattr(view, "_ppt_check", None))
                if not said or set(policy.params) != set(rule.arguments):
                    wrong.append((rule.endpoint, method, policy.needs, codes, sorted(rule.arguments)))
    assert wrong == []


# ---------------------------------------------------------------------------------------------------------
# The data the probes ask for
# ---------------------------------------------------------------------------------------------------------

R1, R2 = "radgjevar1", "radgjevar2"


@dataclass
class Obj:
    """One object a URL can name: its id, who may see it without search_all, and the strings only they may
    read (a client's name and national id, a case's or post's title, a recipient, a notification's text)."""

    kind: str
    ident: str
    seen_by: frozenset[str]
    strings: tuple[str, ...] = ()


@dataclass
class World:
    objects: dict[str, list[Obj]]
    sees_all: dict[str, bool]
    national_ids: dict[str, str]  # client id -> national id
    can: dict[str, set[str]]

    def seen(self, username: str | None, kind: str) -> list[Obj]:
        found = self.objects[kind]
        if username is None:
            return found[:1]
        if kind in OWN_ONLY:
            return [o for o in found if username in o.seen_by]
        if kind in SCOPED and not self.sees_all[username]:
            return [o for o in found if username in o.seen_by]
        return found[:2]

    def others(self, username: str | None, kind: str) -> list[Obj]:
        if username is None:
            return []
        if kind in OWN_ONLY or (kind in SCOPED and not self.sees_all[username]):
            return [o for o in self.objects[kind] if username not in o.seen_by][:2]
        return []

    def hidden_strings(self, username: str | None) -> set[str]:
        """What this user may read nowhere."""
        hidden: set[str] = set()
        for kind, found in self.objects.items():
            for o in found:
                if username is None or ((kind in OWN_ONLY or (kind in SCOPED and not self.sees_all[username]))
                                        and username not in o.seen_by):
                    hidden.update(o.strings)
        return hidden

    def all_strings(self) -> set[str]:
        return {s for found in self.objects.values() for o in found for s in o.strings}


def build_world(app) -> World:
    """Clients, cases, posts, documents, dispatches and notifications of two handlers, with strings no page
    shows by chance; an inbox item, a paper original, an archive job, an organisation. Through the services."""
    from ppt_web import notify
    from ppt_web.cases import service as cases
    from ppt_web.clients import organisations
    from ppt_web.clock import today, utcnow
    from ppt_web.letters import templates as document_templates
    from ppt_web.models import AccessGroup, ArchiveJob, Dispatch, DispatchStatus, PaperOriginal, Permission, Role
    from ppt_web.postreg import service as postreg
    from ppt_web.postreg.upload import receive_upload

    with app.app_context():
        people = {name: user(name) for name, _full, _role in DEMO_USERS}
        r1, r2 = people[R1], people[R2]
        a_client = builders.client(R1, given_name="Alfhild", family_name="Alfaheim")
        b_client = builders.client(R2, given_name="Brynhild", family_name="Bravoheim")
        c_client = builders.client(R2, given_name="Cecilie", family_name="Charlieheim")
        a_case = builders.case(R1, category="follow_up", client_obj=a_client, title="Alfasak hemmeleg")
        b_case = builders.case(R2, category="follow_up", client_obj=b_client, title="Bravosak hemmeleg")
        c_case = builders.case(R2, category="follow_up", client_obj=c_client, title="Charliesak felles")
        # R2's own case on R1's client: R2 sees the client through it, R1 must not see the case.
        d_case = builders.case(R2, category="follow_up", client_obj=a_client, title="Deltasak hemmeleg")
        cases.add_cohandler(r2, c_case.id, r1.id)
        a_post = builders.post(a_case, title="Alfanotat")
        b_post = builders.post(b_case, title="Bravonotat")
        c_post = builders.post(c_case, title="Charlienotat")
        d_post = builders.post(d_case, title="Deltanotat")
        b_final = builders.finalized_post(b_case, title="Bravobrev ferdig")  # makes an archive job
        dispatches = {}
        for tag, post, owner in (("Alfa", a_post, r1), ("Bravo", b_post, r2)):
            row = Dispatch(post_id=post.id, external_ref=str(uuid.uuid4()), recipient_kind="organisation",
                           recipient_name=f"{tag}mottakar AS", recipient_id="974760673", address_line1="Gate 1",
                           postal_code="6100", city="Volda", status=DispatchStatus.FAILED,
                           message=f"{tag}feil", created_by_id=owner.id)
            db.session.add(row)
            dispatches[tag] = row
        notes = {name: notify.notify(person, f"Ekkovarsel-{name}") for name, person in people.items()}
        db.session.commit()
        org = organisations.register_organisation(people["konsulent"], name="Ekkoskule", org_number="",
                                                  kind="school", parent_id=None, address="")
        konsulent = people["konsulent"]
        item = receive_upload(konsulent, io.BytesIO(builders.make_pdf(pages=2, tag="Innkomen-1")), "Innkomen.pdf")
        postreg.open_item(konsulent, item.id)  # claimed now: opening it later changes nothing
        other_item = receive_upload(konsulent, io.BytesIO(builders.make_pdf(tag="Innkomen-2")), "Papir.pdf")
        original = PaperOriginal(item_id=other_item.id, document_id=b_final.documents[0].id, storage_place="Arkivrom",
                                 scanned_on=today(), destroy_by=today() + timedelta(days=90), created_at=utcnow())
        db.session.add(original)
        db.session.commit()
        job_id = db.session.scalar(select(func.max(ArchiveJob.id)))
        template = document_templates.create(people["admin"], document_templates.TemplateData(
            name="Innkalling", kind="invitation", post_type="U", body="<p>Hei {{ klient.namn }}</p>"))
        codes = set(db.session.scalars(select(Permission.code)))
        assert job_id is not None

        def o(kind, ident, seen_by, *strings):
            return Obj(kind, str(ident), frozenset(seen_by), tuple(strings))

        def client_obj(client, seen_by):
            return o("client", client.id, seen_by, client.given_name, client.family_name, client.national_id)

        objects = {
            "client": [client_obj(a_client, {R1, R2}), client_obj(b_client, {R2}), client_obj(c_client, {R1, R2})],
            "case": [o("case", a_case.id, {R1}, a_case.title), o("case", b_case.id, {R2}, b_case.title, b_final.title),
                     o("case", c_case.id, {R1, R2}, c_case.title), o("case", d_case.id, {R2}, d_case.title)],
            "post": [o("post", a_post.id, {R1}, a_post.title), o("post", b_post.id, {R2}, b_post.title),
                     o("post", c_post.id, {R1, R2}, c_post.title), o("post", d_post.id, {R2}, d_post.title)],
            "document": [o("document", a_post.documents[0].id, {R1}), o("document", b_post.documents[0].id, {R2}),
                         o("document", c_post.documents[0].id, {R1, R2}),
                         o("document", d_post.documents[0].id, {R2})],
            "dispatch": [o("dispatch", dispatches["Alfa"].id, {R1}, "Alfamottakar", "Alfafeil"),
                         o("dispatch", dispatches["Bravo"].id, {R2}, "Bravomottakar", "Bravofeil")],
            "notification": [o("notification", notes[name].id, {name}, notes[name].text) for name in people],
            "user": [o("user", r2.id, set())],
            "role": [o("role", db.session.scalar(select(Role.id).where(Role.code == "pp_radgjevar")), set())],
            "group": [o("group", db.session.scalar(select(AccessGroup.id).where(AccessGroup.name == "Team skule")),
                        set())],
            "org": [o("org", org.id, set())],
            "job": [o("job", job_id, set())],
            "item": [o("item", item.id, set())],
            "original": [o("original", original.id, set())],
            "point": [o("point", 1, set())],
            "page": [o("page", 1, set())],
            "perm_code": [o("perm_code", "search_all", set())],
            "field": [o("field", "title", set())],
            "file": [o("file", "css/app.css", set())],
            "figure_key": [o("figure_key", "referrals-month", set())],
            "quarter": [o("quarter", "2026-Q1", set())],
            "template": [o("template", template.id, set())],
        }
        # The posts' PDFs carry their titles (builders.make_pdf's tag): a document leaks its post's title.
        world = World(objects, {n: p.can("search_all") for n, p in people.items()},
                      {str(c.id): c.national_id for c in (a_client, b_client, c_client)},
                      {n: {c for c in codes if p.can(c)} for n, p in people.items()})
        db.session.remove()
    return world


# ---------------------------------------------------------------------------------------------------------
# The probes
# ---------------------------------------------------------------------------------------------------------

MISSING_ID = "900001"
ROUTABLE_HOSTILE = {"zero": "0", "max": str(MAX_ID)}  # the converter takes them; no such row
UNROUTABLE = {"negative": "-1", "over_int32": str(MAX_ID + 1), "huge": "9" * 20, "text": "abc"}
ROUTING_ONLY = set(UNROUTABLE)  # the router refuses them alike for everyone: probed in the slow test
HOSTILE_TEXT = {"quote": "x' OR '1'='1", "markup": "<img src=x onerror=alert(1)>", "dots": "..",
                "long": "a" * 300, "nul": "%00", "unicode": "æøå"}  # where the converter takes strings
BAD_FILES = {"traversal": "../app.py", "deep": "css/../../pyproject.toml", "encoded": "..%2f..%2fapp.py",
             "up": "css/../../../../etc/passwd"}
QUERY_IGNORED = {"zero": "0", "negative": "-1", "text": "abc", "huge": "9" * 20}  # id_or_none drops them


@dataclass(frozen=True)
class Value:
    raw: str
    variant: str  # seen | other | missing | zero | max | negative | ... ; for query: q-<variant>
    obj: Obj | None = None


def variants(world: World, username: str | None, kind: str) -> list[Value]:
    values = [Value(o.ident, "seen", o) for o in world.seen(username, kind)]
    values += [Value(o.ident, "other", o) for o in world.others(username, kind)]
    if kind == "file":
        return values + [Value("css/nope.css", "missing")] + [Value(v, k) for k, v in BAD_FILES.items()]
    if kind in STRINGS:
        return values + [Value("no_such_thing", "missing")] + [Value(quote(v, safe="%"), k)
                                                             for k, v in HOSTILE_TEXT.items()] \
            + [Value("a%2Fb", "slash")]
    return values + [Value(MISSING_ID, "missing")] + [Value(v, k) for k, v in ROUTABLE_HOSTILE.items()] \
        + [Value(v, k) for k, v in UNROUTABLE.items()]


def requests_for(world: World, username: str | None, rule, policy: Policy):
    """(url, {param: Value}) for one rule: each URL parameter varied in turn while the others name an object
    the user may see; then the query parameters, on that same URL."""
    params = list(policy.params)
    base = {p: variants(world, username, policy.params[p])[0] for p in params}

    def build(values: dict[str, Value]) -> str:
        path = rule.rule
        for p in params:
            for token in (f"<int:{p}>", f"<path:{p}>", f"<{p}>"):
                path = path.replace(token, values[p].raw)
        return path

    done: set[str] = set()
    if not params:
        done.add(build(base))
        yield build(base), {}
    for p in params:
        for v in variants(world, username, policy.params[p]):
            values = {**base, p: v}
            url = build(values)
            if url not in done:
                done.add(url)
                yield url, values
    for q, kind in policy.query.items():
        extra = [Value(o.ident, "q-seen", o) for o in world.seen(username, kind)]
        extra += [Value(o.ident, "q-other", o) for o in world.others(username, kind)]
        extra += [Value(MISSING_ID, "q-missing"), Value(str(MAX_ID), "q-max")]
        extra += [Value(v, "q-ignored") for v in QUERY_IGNORED.values()]
        for v in extra:
            yield f"{build(base)}?{urlencode({q: v.raw})}", {**base, q: v}


@dataclass(frozen=True)
class Expect:
    status: frozenset[int]
    log: str | None = None  # an activity-log action the request must add, by this user
    login: bool = False  # a redirect to the sign-in page
    refusal: bool = False  # no object's data at all in the body


NO_SUCH = {"missing", "zero", "max", "q-missing", "q-max", *HOSTILE_TEXT}
NO_ROUTE = {*UNROUTABLE, *BAD_FILES, "slash"}


def expect(world: World, username: str | None, method: str, policy: Policy,
           values: dict[str, Value]) -> Expect | None:
    """What the policy says this request answers; None for a change an allowed user would make (not sent)."""
    if any(v.variant in NO_ROUTE for v in values.values()):
        return Expect(frozenset({404}), refusal=True)
    if policy.needs != PUBLIC:
        if username is None:
            return Expect(frozenset({302}), login=True, refusal=True)
        if shut_out(world, username, policy):
            return Expect(frozenset({403}), log="access_denied", refusal=True)
    for p, v in values.items():
        if v.variant == "other" and p in policy.nested:
            return Expect(policy.missing.get(p, frozenset({404})), refusal=True)
        if v.variant in ("other", "q-other"):
            return Expect(frozenset({404}), log="not_found", refusal=True)
        if v.variant in NO_SUCH:
            return Expect(policy.missing.get(p, frozenset({404})), refusal=p not in policy.missing)
    writes = policy.writes if policy.writes is not None else method != "GET"
    return None if writes else Expect(policy.ok)


@dataclass
class Problem:
    key: tuple[str, str, str | None, str, str]  # endpoint, method, user, param, variant
    url: str
    what: str

    def __str__(self) -> str:
        endpoint, method, username, param, variant = self.key
        return f"{method} {self.url} as {username or 'anonymous'} ({endpoint}, {param}={variant}): {self.what}"


@dataclass
class Run:
    probes: int = 0
    skipped: int = 0
    leaks: int = 0
    errors: int = 0
    problems: list[Problem] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)


def _key(endpoint: str, method: str, username: str | None, values: dict[str, Value]):
    odd = [(p, v.variant) for p, v in values.items() if v.variant not in ("seen", "q-seen")]
    param, variant = odd[0] if odd else ("", "seen")
    return endpoint, method, username, param, variant


def probe(client, engine, world: World, username: str | None, rule, method: str, policy: Policy,
          url: str, values: dict[str, Value], run: Run) -> None:
    from ppt_web.models import ActivityLog

    exp = expect(world, username, method, policy, values)
    key = _key(rule.endpoint, method, username, values)
    if exp is None:
        run.skipped += 1
        return
    run.probes += 1

    def problem(what: str) -> None:
        run.problems.append(Problem(key, url, what))

    before = 0
    if exp.log:
        with engine.connect() as conn:
            before = conn.scalar(select(func.coalesce(func.max(ActivityLog.id), 0)))
    try:
        data = {k: world.objects[v[1:]][0].ident if v.startswith("@") else v for k, v in policy.data.items()}
        response = client.open(url, method=method, data=data if method != "GET" else None)
    except Exception as exc:  # PROPAGATE_EXCEPTIONS: a would-be 500 arrives here with its traceback
        run.errors += 1
        run.statuses[500] += 1
        problem(f"500: {exc!r}\n{''.join(traceback.format_exception(exc)[-6:])}")
        return
    status = response.status_code
    run.statuses[status] += 1
    body = response.get_data()
    if status >= 500 and not (status == 503 and rule.endpoint == "main.readyz"):
        run.errors += 1
        problem(f"{status}")
    elif status not in exp.status:
        problem(f"answered {status}, the policy says {sorted(exp.status)}")
    if exp.login and not response.headers.get("Location", "").startswith("/login"):
        problem(f"redirects to {response.headers.get('Location')!r}, not to the sign-in page")
    if exp.log and status in exp.status:
        with engine.connect() as conn:
            rows = conn.execute(select(ActivityLog.action, ActivityLog.actor_name)
                                .where(ActivityLog.id > before)).all()
        if (exp.log, username) not in {tuple(r) for r in rows}:
            problem(f"no {exp.log} row for {username} in the activity log (rows added: {rows})")
    hidden = world.all_strings() if exp.refusal else world.hidden_strings(username)
    revealed = rule.endpoint == "clients.reveal_national_id" and not exp.refusal
    hidden |= {n for c, n in world.national_ids.items() if not (revealed and values["client_id"].raw == c)}
    leaked = sorted(s for s in hidden if s.encode() in body)
    if exp.refusal and b"%PDF" in body:
        leaked.append("a PDF")
    if leaked:
        run.leaks += 1
        problem(f"answered {status} with another's data in the body: {leaked}")


ROLE_USERS = [(name, role) for name, _full, role in DEMO_USERS] + [(None, "anonymous")]
FIGURES: dict[str, dict[str, object]] = {}  # per test, printed at the end of the module (pytest -s)


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    for name, figures in FIGURES.items():
        print(f"\naccess policy ({name}): " + ", ".join(f"{k} {v}" for k, v in figures.items()))


def snapshot(engine) -> dict[str, object]:
    """The row count and a digest of the rows of every table but the log and sign-in bookkeeping."""
    bookkeeping = {"activity_log", "user_session", "login_throttle"}  # sign-ins and refusals add to these
    state: dict[str, object] = {}
    with engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            if table.name in bookkeeping:
                continue
            rows = sorted(repr(tuple(r)) for r in conn.execute(select(table)).all())
            state[table.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return state


def run_all(app, world: World, keep) -> Run:
    """The probes whose key keep() takes, outside any app context: each request has its own (g, the session,
    the signed-in user), as in production."""
    run = Run()
    with app.app_context():
        engine = db.engine
    rules = list(app.url_map.iter_rules())
    for username, _role in ROLE_USERS:
        client = app.test_client()
        if username:
            assert sign_in(client, username).status_code == 302
        for rule in rules:
            for method in _methods(rule):
                policy = POLICY.get((rule.endpoint, method))
                if policy is None:
                    continue  # test_policy_table_covers_exactly_the_apps_routes names it
                shut = policy.needs != PUBLIC and (username is None or shut_out(world, username, policy))
                for url, values in requests_for(world, username, rule, policy):
                    key = _key(rule.endpoint, method, username, values)
                    # Shut out before any object is looked up: seen, other and missing show that the answer
                    # does not depend on the object; 0 and MAX_ID would only repeat it.
                    if keep(key) and not (shut and key[4] in ("zero", "max")):
                        probe(client, engine, world, username, rule, method, policy, url, values, run)
    return run


def check_all(app, name: str, keep, at_least: int) -> None:
    """Run the probes; every answer as the policy says, and no table changed."""
    started, cpu = time.monotonic(), time.process_time()
    world = build_world(app)
    with app.app_context():
        engine = db.engine
    before = snapshot(engine)
    run = run_all(app, world, keep)
    after = snapshot(engine)
    problems = run.problems
    FIGURES[name] = {"routes": len(POLICY), "roles": len({r for _u, r in ROLE_USERS}), "users": len(ROLE_USERS),
                     "probes": run.probes, "not sent (allowed changes)": run.skipped, "leaks": run.leaks,
                     "500s": run.errors,
                     "answers": dict(sorted(run.statuses.items())), "seconds": round(time.monotonic() - started, 1),
                     "cpu seconds": round(time.process_time() - cpu, 1)}
    assert not problems, f"{len(problems)} probes differ from the policy:\n" + "\n".join(map(str, problems[:300]))
    assert run.probes >= at_least
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert changed == [], f"the probes changed these tables: {changed}"


def test_every_route_answers_every_role_as_the_policy_says(app):
    """Objects seen and not seen, missing ids, 0, MAX_ID and odd strings, for every user."""
    check_all(app, "objects", lambda key: key[4] not in ROUTING_ONLY, at_least=2000)


@pytest.mark.slow
@pytest.mark.one_database  # what a route answers does not depend on the engine
def test_values_no_route_takes_answer_404_for_every_role(app):
    """-1, 2**31, a 20-digit number and text where an id goes: the converter refuses them before any view runs,
    so they answer 404 alike for everyone (and no 500); about 2400 more requests, so in the slow step."""
    check_all(app, "routing", lambda key: key[4] in ROUTING_ONLY, at_least=2000)


