"""Change messages: the push receiver (``python -m ali1688spider listen``) and what every message
goes through, pushed or replayed (:mod:`.inbox`)."""
