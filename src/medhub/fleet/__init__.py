"""The accelerator fleet: sites, devices, workloads, scheduling policies, simulator, Ray backend."""
