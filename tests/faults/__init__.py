"""Fault-injection tests: servers, connections and clocks failing under the bus."""
