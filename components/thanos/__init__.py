"""One module per Thanos component (and Prometheus, memcached), pure builders above each ComponentResource."""
