"""What the tests and the benchmarks share: real servers (`servers`, `replication`, `pgbouncer`), a runtime in
process (`runtime`), runtime replicas as processes (`harness`) and the workloads driven against them (`workload`).

Both `tests/` and `bench/` import this package; neither imports the other.
"""
