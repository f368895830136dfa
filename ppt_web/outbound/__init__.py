"""Outgoing letters: SvarUt REST v3 and a local hand-over folder, behind one OutboundAdapter interface."""
