"""dememo: model dememorization (unlearnability, unlearning, audits)."""

__version__ = "0.1.0"
