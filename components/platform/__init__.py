"""What every workload stands on: the cluster context and registration, the namespace, shared builders."""
