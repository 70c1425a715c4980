"""Components: one module per Thanos component and per cloud; pure builders at the top of each, resources below.

- region.py       ThanosRegion: cloud provider, object store, clusters      (thanos:index:Region)
- cluster.py      ThanosCluster: namespace, shared objects, every workload  (thanos:index:Cluster)
- cloud_aws.py / cloud_gcp.py / cloud_azure.py / cloud_incluster.py: buckets and workload identity
- prometheus.py, query.py, query_frontend.py, store.py, compactor.py, ruler.py, receive.py, bucket_web.py,
  memcached.py: the workloads
"""
