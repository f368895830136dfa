"""The post registration blueprint, shared by its route modules (the inbox, paper originals)."""
from flask import Blueprint
from flask_login import current_user

from ..models import User

bp = Blueprint("postreg", __name__, url_prefix="/post-registration")


def actor() -> User:
    """The signed-in user, as the services take it."""
    return current_user._get_current_object()
