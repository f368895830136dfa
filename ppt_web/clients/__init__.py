"""Clients, client folders and organisations."""
