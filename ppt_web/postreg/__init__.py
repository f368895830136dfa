"""Post registration (SPEC §5): the inbox of scanned and digital mail, and paper originals (SPEC §8)."""
from flask import Blueprint

bp = Blueprint("postreg", __name__, url_prefix="/post-registration")
