"""Electronic dispatch of outgoing posts (SvarUt), its failures list and retries (SPEC §6)."""
from flask import Blueprint

bp = Blueprint("dispatch", __name__, url_prefix="/dispatch")
