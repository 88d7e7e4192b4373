"""beam_zml: Zenodo software as images, trees and metadata for machine learning, built with Apache Beam."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    requirements = (line.split("#", 1)[0].strip() for line in lines)
    return [line for line in requirements if line]


setup(
    name="beam_zml",
    version="0.1.0",
    description="A dataset of Zenodo software as images, trees and metadata, built with Apache Beam.",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["beam_zml", "beam_zml.*", "pipelines", "pipelines.*"]),
    package_data={"beam_zml.schemas": ["*.avsc"], "beam_zml.runners": ["poms/*.pom.xml"]},
    install_requires=requirements("requirements.txt"),
    extras_require={"test": requirements("requirements-test.txt")},
    entry_points={"console_scripts": ["zml = pipelines.cli:main"]},
)
