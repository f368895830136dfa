"""Cases and their journal posts: registration, finalize, approval, write-off, closing."""
