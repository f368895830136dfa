"""Sanitize the HTML the editor sends (nh3, the Rust ammonia sanitizer) before it is kept or rendered.

What is kept is what a letter needs and the editor makes: paragraphs, headings, bold/italic/underline,
lists, tables and links; alignment and indentation as the editor's own classes. Everything else goes:
scripts, event handlers, every style attribute (a style can hide text: white on white, display:none,
font-size 0), classes other than the editor's, and images that are not inline PNG or JPEG data (a
remote image would be fetched when the PDF is made, and tells a third party the letter was opened).
"""
from __future__ import annotations

import base64
import io
import re

import nh3

TAGS = {"p", "br", "h1", "h2", "h3", "h4", "strong", "b", "em", "i", "u", "s", "ol", "ul", "li", "blockquote",
        "table", "thead", "tbody", "tr", "th", "td", "a", "img", "span"}
ATTRIBUTES = {"a": {"href"}, "td": {"colspan", "rowspan", "data-row"}, "th": {"colspan", "rowspan"},
              "img": {"src", "alt"}, "li": {"data-list"}}
_ALIGN = {f"ql-align-{a}" for a in ("center", "right", "justify")}
_INDENT = {f"ql-indent-{n}" for n in range(1, 9)}
CLASSES = {tag: _ALIGN | _INDENT for tag in ("p", "h1", "h2", "h3", "h4", "li", "blockquote")}
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=\s]+\Z")
_ROW_ID = re.compile(r"row-[a-z0-9]{1,20}\Z")
_LIST_KIND = {"bullet", "ordered"}
MAX_IMAGE_CHARS = 2 * 1024 * 1024  # one inline image of at most ~1.5 MB
MAX_IMAGE_PIXELS = 4096 * 4096


def _image(value: str) -> str | None:
    """An inline PNG or JPEG that is what it says and small enough to lay out: its header is read (not
    the whole picture), so a small file that claims a huge picture is refused before the PDF decodes it."""
    if len(value) > MAX_IMAGE_CHARS or not _DATA_IMAGE.match(value):
        return None
    from PIL import Image  # noqa: PLC0415 - only for a template with a picture (Pillow: ~2.4 MiB of a worker)

    try:
        raw = base64.b64decode(value.split(",", 1)[1], validate=False)
        with Image.open(io.BytesIO(raw)) as picture:
            ok = picture.format in ("PNG", "JPEG") and picture.width * picture.height <= MAX_IMAGE_PIXELS
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return value if ok else None


def _attribute(tag: str, name: str, value: str) -> str | None:
    if tag == "a" and name == "href" and value.strip().lower().startswith("data:"):
        return None
    if tag == "img" and name == "src":
        return _image(value)
    if name == "data-row":
        return value if _ROW_ID.match(value) else None
    if name == "data-list":
        return value if value in _LIST_KIND else None
    if name in ("colspan", "rowspan"):
        return value if value.isascii() and value.isdigit() and 0 < int(value) <= 50 else None
    return value


def clean(html: str) -> str:
    """The HTML with only what a letter may hold (see the module)."""
    out = nh3.clean(html or "", tags=TAGS, attributes=ATTRIBUTES, allowed_classes=CLASSES,
                    attribute_filter=_attribute, url_schemes={"http", "https", "mailto", "data"},
                    link_rel="noopener noreferrer", strip_comments=True, url_relative="deny")
    # An <img> whose src was removed is left without one: drop it rather than keep an empty image.
    return re.sub(r"<img(?![^>]*\ssrc=)[^>]*>", "", out)
