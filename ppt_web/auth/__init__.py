"""Sign-in, sessions, lockout, and who may do what (permissions and access scope)."""
