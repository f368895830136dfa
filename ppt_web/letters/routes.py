"""Letters on a case: new letter from a template, the editor with autosave, the PDF preview."""
from .blueprint import bp

__all__ = ["bp"]
