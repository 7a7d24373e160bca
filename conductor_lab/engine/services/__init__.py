"""The engine's API, one service per resource (definitions, workflows, tasks)."""
