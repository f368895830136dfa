from flask import Blueprint

bp = Blueprint("activity", __name__, url_prefix="/activity-log")

from . import routes  # noqa: E402,F401
