"""Great Expectations: suites generated from the rule catalogue, custom expectations, the runner."""
