"""The global view: certificates, the global query tier over every cluster's query, DNS, authenticated entry points."""
