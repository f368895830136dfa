"""Letter templates and the letterhead (manage_templates)."""
from .blueprint import bp

__all__ = ["bp"]
