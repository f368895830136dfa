"""A KS Fiks IO client: send a message to another Fiks IO account, receive the replies.

settings.py  what a participant needs (accounts, keys, integration, token) and what is wrong with it
asice.py     the signed ASiC-E container a message's files travel in
client.py    the HTTP side: the send API, the catalog's public keys, Dokumentlager downloads
amqp.py      the receiving side: one long-lived consumer of the account's queue, acknowledging a
             message only after its handler has returned

Generic: nothing here knows about archive jobs (ppt_web/archive/fiksio.py does) or the reference
archive (ppt_web/archive/reference/fiksio.py). docs/integrations.md, "Fiks IO", describes the wire format.
"""
