"""The post registration blueprint, shared by its route modules (the inbox, paper originals)."""
from flask import Blueprint

bp = Blueprint("postreg", __name__, url_prefix="/post-registration")
