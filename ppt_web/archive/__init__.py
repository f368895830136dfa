"""Archive dispatch (Fiks Arkiv): the outbox hooks, the worker's dispatch, the archive log."""
from flask import Blueprint

bp = Blueprint("archive", __name__, url_prefix="/archive-log")
