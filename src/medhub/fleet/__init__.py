"""The accelerator fleet: sites, devices, workloads, scheduling policies, simulator, Ray backend.

Modules (one job each):
  profiles.py            device profiles carried with the package (profiles.csv, one source per number),
                         on-site measurements merged over them, Gavel training throughputs
  model.py               Site / Node / Device / Owner / Stream / Fleet, `load_fleet(path)`
  traces.py              Azure LLM 2023 and Philly-derived (Gavel) traces -> workloads
  inference_sim.py       discrete-event simulator of online inference (`simulate_inference`)
  inference_policies.py  first-fit, capacity-proportional, medhub (energy-aware)
  training_sim.py        discrete-event simulator of training jobs (`simulate_training`)
  training_policies.py   fifo, gavel (heterogeneity-aware LAS), medhub (energy-aware LAS)
  bound.py               LP lower bound on inference energy (`energy_lower_bound`, scipy HiGHS)
  report.py              every policy on one load (`compare_inference`, `compare_training`), `plot_power`
  ray_backend.py         the same placements on a Ray cluster (`plan_inference`, `run_on_ray`)
"""
