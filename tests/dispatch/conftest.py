from tests._bus import bus, bus_factory, real_bus, reopen, standalone_bus  # noqa: F401
