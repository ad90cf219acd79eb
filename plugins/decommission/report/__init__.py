"""The reconciliation report for people: JSON, HTML, PDF, charts, annexes; Swedish or English labels.

May import ``reconcile`` and everything upstream of it.
"""
