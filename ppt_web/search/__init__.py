"""Live search over cases, clients and posts (queries are POSTed: no national id in a URL)."""
