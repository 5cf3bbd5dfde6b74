from tests._bus import bus, bus_factory, reopen, standalone_bus  # noqa: F401
