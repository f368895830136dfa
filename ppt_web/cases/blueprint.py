"""The cases blueprint, shared by its route modules (cases, journal posts, approval)."""
from flask import Blueprint
from flask_login import current_user

from ..models import User

bp = Blueprint("cases", __name__)


def actor() -> User:
    """The signed-in user, as the services take it."""
    return current_user._get_current_object()
