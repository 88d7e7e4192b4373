# An SDK harness image holding beam_zml and its dependencies, for --environment_type DOCKER
# on Flink or Spark workers that run Docker. NOT built or tested on the project's build
# machines (they have no Docker engine): there the tests use worker pools (EXTERNAL) instead.
#
#   docker build -t beam_zml-sdk:0.1.0 .
#   python -m pipelines.build_dataset ... --environment_type DOCKER --environment_config beam_zml-sdk:0.1.0
FROM apache/beam_python3.11_sdk:2.62.0

COPY requirements.txt setup.py MANIFEST.in README.md /opt/beam_zml/
COPY beam_zml /opt/beam_zml/beam_zml
COPY pipelines /opt/beam_zml/pipelines
RUN pip install --no-cache-dir /opt/beam_zml

# The base image's entry point (/opt/apache/beam/boot) starts the SDK harness.
