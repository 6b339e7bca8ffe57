"""MLflow on the driver: the store, runs by name and their life, the heartbeat, links into the UI,
where genotypes come from, and models out (LoggedModels in the registry)."""
