"""Post registration: the inbox of scanned and digital mail, transfer, and paper originals."""
