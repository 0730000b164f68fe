"""Search: spend a generation budget on candidates and keep the best verified one."""
