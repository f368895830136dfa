"""The cases blueprint, shared by its route modules (cases, journal posts, approval)."""
from flask import Blueprint

bp = Blueprint("cases", __name__)
