"""Workload: the calls of the target recorded from the project's own pytest tests."""

from speedsmith.target import module_location, project_root
from speedsmith.workload.capture import (
    Workload,
    record_workload,
    run_tests_with_candidate,
    without_calls,
)

__all__ = [
    "Workload",
    "module_location",
    "project_root",
    "record_workload",
    "run_tests_with_candidate",
    "without_calls",
]
