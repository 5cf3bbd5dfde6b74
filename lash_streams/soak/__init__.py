"""``lash-streams soak``: a seeded workload of OS processes, faults during the
run, and a checker that reads the bus afterwards and says, per invariant,
whether anything acknowledged was lost, duplicated or invented (docs/soak.md).

``run.run_soak`` runs one; ``checker.check`` is the checker alone. Nothing is
imported here: ``python -m lash_streams.soak.role`` (each workload process)
must not find its own module already loaded by the package.
"""
