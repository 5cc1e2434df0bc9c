"""Packaging for scrapyd eggs (``scrapyd-deploy``) and ``pip install .``.

The egg scrapyd gets carries no dependencies (scrapyd never installs them): install
``requirements.txt`` where scrapyd runs. ``install_requires`` is filled from requirements.txt
only when it is there, so an egg also builds from a tree that has just the package.
"""

from pathlib import Path

from setuptools import find_packages, setup

REQUIREMENTS = Path(__file__).parent / "requirements.txt"


def requirements() -> list[str]:
    if not REQUIREMENTS.is_file():
        return []
    lines = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-"))]


setup(
    name="ali1688spider",
    version="0.1.0",
    description="1688.com product data through the official 1688 Open Platform API, with Scrapy",
    packages=find_packages(include=["ali1688spider", "ali1688spider.*"]),
    python_requires=">=3.11",
    install_requires=requirements(),
    entry_points={"scrapy": ["settings = ali1688spider.settings"]},
    zip_safe=False,
)
