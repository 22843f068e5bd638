"""The auditor's tools: histories, replay, re-checks, projection audit, reports, tamper evidence."""
