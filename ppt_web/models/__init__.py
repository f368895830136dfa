"""All models, importable from one place (Alembic autogenerate sees them here)."""
from .activity import ActivityLog
from .archive import ArchiveJob, ArchiveStatus, JobStatus
from .dispatch import Dispatch, DispatchStatus
from .domain import (
                     Case,
                     CaseCategory,
                     CaseKind,
                     CaseStatus,
                     Client,
                     Correspondent,
                     Document,
                     JournalPost,
                     MetadataCorrection,
                     Organisation,
                     OrgKind,
                     PostEvent,
                     PostSignature,
                     PostStatus,
                     PostType,
)
from .files import StoredFile
from .forms import FormToken
from .inbox import CHECKS_FOR_SOURCE, InboxItem, InboxSource, InboxStatus, PaperOriginal, ScanChecklist
from .letters import DocumentTemplate, DocumentTemplateVersion, Letter, TemplateKind
from .notification import Notification
from .settings import Setting
from .user import AccessGroup, LoginThrottle, Permission, Role, User, UserSession

__all__ = [
    "ArchiveJob", "ArchiveStatus", "JobStatus",
    "Case", "CaseCategory", "CaseKind", "CaseStatus", "Client", "Correspondent", "Document", "JournalPost",
    "MetadataCorrection", "Organisation", "OrgKind", "PostEvent", "PostSignature", "PostStatus", "PostType",
    "StoredFile", "Dispatch", "DispatchStatus", "FormToken",
    "CHECKS_FOR_SOURCE", "ScanChecklist", "InboxItem", "InboxSource", "InboxStatus", "PaperOriginal",
    "Letter", "DocumentTemplate", "DocumentTemplateVersion", "TemplateKind",
    "AccessGroup",
    "ActivityLog",
    "LoginThrottle",
    "Notification",
    "Permission",
    "Role",
    "Setting",
    "User",
    "UserSession",
]
