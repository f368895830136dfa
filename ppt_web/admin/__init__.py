"""Administration: users, roles, access groups and the role matrix."""
