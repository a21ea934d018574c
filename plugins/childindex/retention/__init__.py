"""Retention: the policy, the rules that apply it, and the deletion certificate of each run."""

from childindex.retention.policy import Rule, policy, policy_markdown
from childindex.retention.run import run_retention

__all__ = ["Rule", "policy", "policy_markdown", "run_retention"]
