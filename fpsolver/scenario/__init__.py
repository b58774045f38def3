"""Scenario files: YAML with line tracking, the schema, and building solver objects."""

from .build import LoadedScenario, check_output_path, load_scenario, loads_scenario
from .schema import Scenario

__all__ = ["Scenario", "LoadedScenario", "load_scenario", "loads_scenario", "check_output_path"]
