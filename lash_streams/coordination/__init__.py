"""The coordination layer (DESIGN layer 4): what runs beside the store in a
fleet. Wake consumers (``wakes``) and fleet pods (``fleet``), the recovery
drive and sweep (``recovery``), and death evidence: host-local (``liveness``,
LV-2) and fleet-wide (``fleet_liveness``).

Every part takes the store (:class:`lash_streams.store.Store`), never the bus;
the bus composes them and sits above.
"""
