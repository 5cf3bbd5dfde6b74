from tests._tmp_servers import cluster_server, namespace, servers  # noqa: F401
