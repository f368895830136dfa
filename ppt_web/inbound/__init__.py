"""Incoming digital mail: SvarInn V2 and a local folder, behind one InboundSource interface."""
