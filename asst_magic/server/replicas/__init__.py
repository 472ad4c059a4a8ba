"""Several server replicas on one PostgreSQL database: leases, recovery, forwarding."""
