"""The observing half: collection (Kubernetes discovery, node-exporter, kube-state-metrics), Alertmanager, the
platform's rules, Grafana and its dashboards, and operator mode."""
