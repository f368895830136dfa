"""Archive dispatch (Fiks Arkiv). The outbox hooks are the only entry the domain services use."""
