"""Uploaded documents: checked in a separate process, stored once under instance/files."""
