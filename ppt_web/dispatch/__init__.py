"""Electronic dispatch of outgoing posts through SvarUt, its failures list and retries."""
