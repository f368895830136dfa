"""Letters written in the app: templates with merge fields, the editor's text, and its PDF/A."""
