"""Test support shared by tests/ and benchmarks/: a loopback server that speaks Zenodo's and
GitHub's APIs (`zenodo_server`), Flink, Spark, Dask and job-server processes (`runner_processes`),
comparing two built datasets (`dataset_compare`) and the benchmark corpora (`corpus`).
Nothing in the product imports it.
"""
