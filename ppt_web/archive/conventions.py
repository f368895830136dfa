"""What the snapshot and the message agree on: the archive-local defaults, the external keys of a
case and a post, the derived korrespondansepartID, and which posts are archived."""
from __future__ import annotations

import uuid

from ..models import Case, JournalPost
from ..models.domain import DEFAULT_LEGAL_BASIS, LOCKED_STATUSES

# Archive-local values: every municipality's archive has its own. build(job, settings) overrides any key;
# a dict value is merged key by key. None leaves the optional element out (the archive uses its default).
DEFAULTS: dict = {
    "system": "ppt_web",                         # arkivmelding/system: the sending system
    "fagsystem": "ppt_web",                      # referanseEksternNoekkel/fagsystem: whose keys "case:<id>" are
    "klassifikasjonssystem_person": "FNR",       # klassifikasjonssystemID of person cases; klasseID = national id
    "klassifikasjonssystem_organisasjon": "ORGNR",  # of system cases; klasseID = organisation number
    "tilgangsrestriksjon": "13",                 # skjerming/tilgangsrestriksjon kode (no Fiks code list exists)
    "skjermingshjemmel_mappe": DEFAULT_LEGAL_BASIS,  # legal basis screening the saksmappe (title, part)
    "arkivdel": None,                            # mappe/arkivdel kode
    "administrativ_enhet": None,                 # saksmappe/administrativEnhet/navn
    "mappetype": {},                             # case category ("expert_assessment", ...) or kind -> mappetype kode
    "dokumenttype": {"I": "KORR", "U": "KORR", "N": "NOTAT", "X": "NOTAT", "vedlegg": "VEDLEGG"},
    "format": "PDF",                             # dokumentobjekt/format kode (no Fiks code list exists)
    "landkode": "NO",                            # part/personID/landkode
}


# The settings a job keeps from its moment: the archive finds our objects by fagsystem and key.
FROZEN_SETTINGS = frozenset({"fagsystem", "system"})


def merged_settings(settings: dict | None) -> dict:
    """DEFAULTS with these settings over them; a dict value (mappetype, dokumenttype) is merged key by key."""
    merged = dict(DEFAULTS)
    for key, value in (settings or {}).items():
        merged[key] = {**merged[key], **value} if isinstance(merged.get(key), dict) and isinstance(value, dict) \
            else value
    return merged



def criteria(post: JournalPost) -> bool:
    """Archived only when finalized (or dispatched) and linked to a national id or organisation number."""
    if post.status not in LOCKED_STATUSES:
        return False
    case = post.case
    return bool((case.client and case.client.national_id) or (case.organisation and case.organisation.org_number))



def case_key(case: Case) -> str:
    return f"case:{case.id}"


def post_key(post: JournalPost) -> str:
    return f"post:{post.id}"


def party_id(post: JournalPost, position: int, conf: dict | None = None) -> str:
    """A korrespondansepartID derived from the case system's name, the post and the position: stable, so
    a message built again names the same one (archive/snapshot.py says which id a message uses)."""
    fagsystem = (conf or DEFAULTS)["fagsystem"]
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{fagsystem}:post:{post.id}:korrespondansepart:{position}"))
