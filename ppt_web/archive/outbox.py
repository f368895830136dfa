"""Where each archive-relevant change writes its archive job (the outbox row).

Every function is called by a domain service inside its transaction, after the change and
before the commit, so the job row and the change commit together (DESIGN.md §1-2). Until the
archive dispatch is built these record nothing; the archive issue fills them in here, and the
services need no change.
"""
from __future__ import annotations

from ..models import Case, JournalPost, MetadataCorrection


def case_created(case: Case) -> None:
    """A new case: the archive gets its saksmappe (arkivmelding.opprett)."""


def case_closed(case: Case) -> None:
    """Case closed: saksstatus A (arkivmelding.oppdater)."""


def case_reopened(case: Case) -> None:
    """Case reopened: saksstatus B (arkivmelding.oppdater)."""


def post_finalized(post: JournalPost) -> None:
    """A finalized post linked to a national id or organisation number is archived."""


def metadata_corrected(post: JournalPost, correction: MetadataCorrection) -> None:
    """A metadata correction of a finalized post (arkivmelding.oppdater)."""


def post_written_off(post: JournalPost) -> None:
    """A write-off of an incoming post (avskrivning.opprett)."""
