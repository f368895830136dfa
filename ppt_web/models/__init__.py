"""All models, importable from one place (Alembic autogenerate sees them here)."""
from .activity import ActivityLog
from .notification import Notification, WorkerHeartbeat
from .user import AccessGroup, LoginThrottle, Permission, Role, User, UserSession

__all__ = [
    "AccessGroup",
    "ActivityLog",
    "LoginThrottle",
    "Notification",
    "Permission",
    "Role",
    "User",
    "UserSession",
    "WorkerHeartbeat",
]
