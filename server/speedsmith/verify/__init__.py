"""Verification: run candidates in a sandboxed child, compare behaviour, decide on speed."""
