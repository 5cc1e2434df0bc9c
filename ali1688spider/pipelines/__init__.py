"""Item pipelines: ``validation`` (an invalid product becomes a failure), then ``mongo`` (bulk writes)."""
