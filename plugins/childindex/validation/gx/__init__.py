"""Great Expectations: suites generated from the rule catalogue, the runner, custom expectations.

Nothing here imports GX at module level: the runner imports it on first use.
"""
