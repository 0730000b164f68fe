"""The fixture projects under ``projects/`` are data: their tests run only inside copies."""

collect_ignore = ["projects"]
