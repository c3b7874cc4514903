"""Packaged YAML configs (installed as ``tcn_robot.configs``); quickstart.yaml is the default of every command."""
