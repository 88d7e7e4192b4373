"""Running the pipeline on clusters: Beam's Flink and Spark job-server jars built with Maven for
`zml setup-runner` (`setup_runner`, from the poms in `poms/`), and a corrected Dask runner (`dask_runner`).
"""
