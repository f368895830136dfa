"""The start page, notifications, health and readiness."""
