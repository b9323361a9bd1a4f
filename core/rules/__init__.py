"""Detection rules: the engine, the built-in rules, findings, user rules (see docs/rules.md)."""
from .engine import RuleEngine
from .model import SEVERITIES, SEVERITY_RANK, Finding, Rule

__all__ = ["RuleEngine", "Finding", "Rule", "SEVERITIES", "SEVERITY_RANK"]
