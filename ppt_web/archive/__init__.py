"""The archive: outbox hooks, Fiks Arkiv messages, transports, the worker's sending, the archive log."""
