"""Stored reports: each generated report is kept with its lecture (writer, model, time, text)."""

from __future__ import annotations

from core.queries import list_reports, save_report

__all__ = ["list_reports", "save_report"]
