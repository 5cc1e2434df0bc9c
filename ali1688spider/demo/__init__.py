"""The one-command demo (``python -m ali1688spider.demo``, ``make demo``) and ``services``: the
local servers a demo, a test or a benchmark starts (the emulator, a Mongo-protocol server, Redis)."""
