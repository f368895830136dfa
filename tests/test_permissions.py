"""The role matrix of SPEC §2, checked cell by cell against the seeded database."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ppt_web.admin import service as admin
from ppt_web.auth.access import require
from ppt_web.errors import Conflict, Forbidden
from ppt_web.extensions import db
from ppt_web.models import Permission, Role

from .conftest import role, user

# Copied verbatim from SPEC §2, so a drift in either place fails here.
SPEC_TABLE = """
| code | meaning | Admin | Merkantil | Leiar | Nestleiar | PP-rådgjevar | Konsulent | Superbrukar |
|---|---|---|---|---|---|---|---|---|
| search_all | search every case and client | x | x | x | x | | x | x |
| search_own | search own active and closed cases (own = responsible or co-handler) | x | x | x | x | x | x | x |
| register_case | register person, system and administration cases | x | x | | | | x | x |
| assign_roles | give and take roles | x | | x | | | x | x |
| change_handler | change a case's responsible handler | x | x | | | | x | |
| add_cohandler | add co-handlers to own case | x | x | | | x | x | |
| manage_templates | register, edit and copy document templates | x | | | | | x | x |
| manage_groups | create access groups (teams) | x | | x | | | x | x |
| journal | create and finalize journal posts | x | x | | | x | x | |
| sysadmin_view | open system administration | x | | x | | | x | x |
| sysadmin_edit | change system administration | x | x | x | | | x | x |
| sysadmin_edit_all | change ALL of system administration, including the role matrix | | | x | | | | x |
| manage_orgs | add organisations and organisation structure | x | x | | | | x | |
| distribute_mail | distribute incoming mail (post registration) | x | x | | | | x | x |
| activity_log | read the activity log | x | x | x | | | x | |
| fix_misregistered | edit and delete misregistered documents that are NOT finalized | x | x | | | | x | |
| correct_metadata | correct metadata of registered (finalized, not dispatched) documents | | | | | | x | |
| statistics | statistics pages | x | | x | | | x | |
| esign | electronic signing | x | x | | | x | | |
| citizen_dialogue | citizen dialogue (innbyggardialog) | x | x | | | x | | |
| send | create, finalize and send correspondence electronically | x | x | | | x | x | |
| close_case | close cases | x | x | | | x | x | |
| approve | approve expert assessments sent for approval | | | x | x | | | |
| archive_log | see the archive log (read-only) | x | | x | | | x | x |
| archive_retry | retry failed archive jobs | x | | | | | x | x |
| archive_delete | delete an archive job (dangerous) | | | | | | x | x |"""

ROLE_COLUMNS = {"Admin": "admin", "Merkantil": "merkantil", "Leiar": "leiar", "Nestleiar": "nestleiar",
                "PP-rådgjevar": "pp_radgjevar", "Konsulent": "konsulent", "Superbrukar": "superbrukar"}


def parse_spec() -> dict[str, set[str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in SPEC_TABLE.strip().splitlines()]
    header, body = rows[0], rows[2:]
    roles = [ROLE_COLUMNS[name] for name in header[2:]]
    expected: dict[str, set[str]] = {r: set() for r in roles}
    for row in body:
        code = row[0]
        for role_code, mark in zip(roles, row[2:], strict=False):
            if mark == "x":
                expected[role_code].add(code)
    return expected


EXPECTED = parse_spec()
ALL_CODES = [line.split("|")[1].strip() for line in SPEC_TABLE.strip().splitlines()[2:]]


def test_every_permission_code_exists(ctx):
    """The database knows exactly the permission codes of the matrix."""
    assert set(db.session.scalars(select(Permission.code))) == set(ALL_CODES)
    assert len(ALL_CODES) == 26


@pytest.mark.parametrize("role_code", sorted(EXPECTED))
def test_role_has_exactly_the_marked_permissions(ctx, role_code):
    """Each role holds exactly the permissions SPEC §2 marks for it."""
    assert role(role_code).permission_codes() == EXPECTED[role_code]


@pytest.mark.parametrize("role_code", sorted(EXPECTED))
def test_permission_check_answers_as_spec(ctx, role_code):
    """For every code, the one check answers for this role as the matrix says (with implications)."""
    from ppt_web.models import User

    holder = User(username=f"t-{role_code}", full_name="T", password_hash="x", active=True)
    holder.roles.append(role(role_code))
    wrong = []
    for code in ALL_CODES:
        implied = code == "sysadmin_edit" and "sysadmin_edit_all" in EXPECTED[role_code]
        expected = code in EXPECTED[role_code] or implied
        try:
            require(holder, code)
            allowed = True
        except Forbidden:
            allowed = False
        if allowed is not expected or holder.can(code) is not expected:
            wrong.append(code)
    assert wrong == []


def test_inactive_roles_exist_but_cannot_be_assigned(ctx):
    """Psykolog and Stedfortreder exist, are inactive and are refused by the service."""
    inactive = {r.code for r in db.session.scalars(select(Role).where(Role.active.is_(False)))}
    assert inactive == {"psykolog", "stedfortreder"}
    with pytest.raises(Conflict):
        admin.add_role(user("konsulent"), user("radgjevar1").id, role("psykolog").id)
    db.session.rollback()
    assert "psykolog" not in {r.code for r in user("radgjevar1").roles}


def test_several_roles_give_the_union(ctx):
    """A user with several roles has the union of their permissions."""
    admin.add_role(user("superbrukar"), user("radgjevar1").id, role("leiar").id)  # only Leiar/Superbrukar give it
    holder = user("radgjevar1")
    assert holder.permission_codes() >= EXPECTED["pp_radgjevar"] | EXPECTED["leiar"]
    assert holder.can("approve") and holder.can("esign")
    assert not holder.can("archive_delete")


def test_sysadmin_edit_all_implies_sysadmin_edit(ctx):
    """Taking sysadmin_edit away from Leiar leaves it implied by sysadmin_edit_all."""
    admin.set_role_permission(user("superbrukar"), role("leiar").id, "sysadmin_edit", False)  # not one's own role
    fresh = user("leiar")
    fresh.forget_permissions()
    assert "sysadmin_edit" not in role("leiar").permission_codes()
    assert fresh.can("sysadmin_edit")
