"""Server-rendered pages for applicants, approvers, auditors and administrators."""
