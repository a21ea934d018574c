"""Notices: telling the organisations involved with a child that another one is (issue 17, in progress)."""
