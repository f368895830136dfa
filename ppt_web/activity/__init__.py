"""The activity log: who did what to which object, append-only."""
