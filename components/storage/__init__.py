"""Object storage per cloud (and in-cluster for dev) and the bucket identities of every component."""
