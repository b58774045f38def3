"""Scenario files: YAML with line tracking, the schema, and building solver objects."""

from .build import LoadedScenario, Run, check_output_path, load_runs, load_scenario, loads_scenario
from .schema import Scenario

__all__ = ["Scenario", "LoadedScenario", "Run", "load_runs", "load_scenario", "loads_scenario", "check_output_path"]
