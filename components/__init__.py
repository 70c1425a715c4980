"""Components, in layers that import only downwards (pyproject.toml [tool.importlinter], checked by ./run tests):

- root.py           the composition root: `deploy(stack)`, cloud providers, stack references, the DR read path
- region.py         ThanosRegion: a region's object store and its clusters                 (thanos:index:Region)
- cluster.py        ThanosCluster: namespace, shared objects, every workload of a cluster  (thanos:index:Cluster)
- global_view/      the global tier over every cluster's query, its certificates, DNS and entry point
- operations/       day 2: the post-deploy validation Job, bucket jobs, the DR read path
- storage/          object storage: the interface and table of backends (backend.py), one module per cloud (aws,
                    gcp, azure, in_cluster), and the bucket identities
- thanos/           one module per Thanos component (and Prometheus, memcached): pure builders above each resource
- observability/    collection, rules, Alertmanager, Grafana, dashboards, the TLS probe
- platform/         what every workload stands on: context and registration, namespace, ports, names and in-cluster
                    addresses, TLS mounts

Each layer imports only the ones below it (siblings on one line of the contract may import each other); config/ is
below them all.
"""
