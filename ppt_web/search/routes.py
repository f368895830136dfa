"""Search page. Queries are POSTed, so a national id never lands in a URL or an access log."""
from flask import Blueprint, render_template, request
from flask_login import current_user

from ..auth.access import permission_required
from ..links import id_prefix
from . import service

bp = Blueprint("search", __name__, url_prefix="/search")


@bp.route("/", methods=["GET", "POST"])
@permission_required("search_own", "search_all")
def search():
    query = request.form.get("q", "") if request.method == "POST" else ""
    page = request.form.get("page", 1, type=int) or 1
    results = service.search(current_user._get_current_object(), query, page) if query else None
    # The rows' links: url_for once per page, not per row.
    links = {"client": id_prefix("clients.folder", "client_id"), "case": id_prefix("cases.case", "case_id"),
             "post": id_prefix("cases.post", "post_id")} if results is not None else {}
    if request.headers.get("HX-Request") and request.method == "POST":
        return render_template("search/_results.html", results=results, query=query, links=links)
    return render_template("search/search.html", results=results, query=query, links=links)
