"""Audits of the judges themselves: ``tribunal audit judges`` (:mod:`graphs.audit.judges`)."""

from graphs.audit.judges import AuditOptions, JudgeAudit, audit_judges

__all__ = ["AuditOptions", "JudgeAudit", "audit_judges"]
