"""The spiders: ``product`` (ids, offer URLs, a file)."""
