"""What is kept in MongoDB and how it is read back:

- ``documents``: collection names and the decoding of stored money and price tiers
- ``mongo``: :class:`MongoStore`, bulk upserts of products and failures, runs
- ``history``: what changed between two fetches of a product
- ``freshness``: which ids were fetched recently enough to skip
- ``fields``: which fields of a product are kept (``-a fields``, ``ALI1688_STORE_RAW``)
- ``rates``: the call rate an app was found to pass, for the next run to start from
"""
