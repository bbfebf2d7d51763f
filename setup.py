"""Which files go into mdt's wheel; the project's metadata is in pyproject.toml.

The repository keeps ``templates/`` and ``migrations/`` at its top level,
beside the ``mdt`` package. A wheel installs only packages, so both folders
are declared as data packages, ``mdt.templates`` and ``mdt.migrations``, and
``package_dir`` maps each to its folder (setuptools' documented way to build
a package from a directory of another name). The wheel therefore holds
``mdt/templates/`` and ``mdt/migrations/``, and ``mdt/static/`` as it is;
``create_app`` uses them when they are there and the top-level folders of the
checkout otherwise (an editable install, ``pip install -e .``).

pyproject.toml's ``[tool.setuptools]`` cannot add packages to the ones that
``packages.find`` discovers, hence this file: new feature packages under
``mdt/`` are found without listing them. ``tests/test_wheel.py`` installs the
wheel in a fresh venv and serves a page from it.
"""
from setuptools import find_namespace_packages, setup

# The wheel's package -> the checkout's folder.
DATA_PACKAGES = {"mdt.templates": "templates", "mdt.migrations": "migrations"}

setup(
    packages=[
        *find_namespace_packages(include=["mdt", "mdt.*", "worker", "worker.*"],
                                 exclude=["*.__pycache__"]),
        *DATA_PACKAGES,
    ],
    package_dir=DATA_PACKAGES,
    # Only the files named here, not whatever a manifest would add.
    include_package_data=False,
    package_data={
        "mdt.static": ["**/*"],
        "mdt.templates": ["**/*"],
        # env.py is picked up as a module; the revisions are files, not modules.
        "mdt.migrations": ["README", "alembic.ini", "script.py.mako", "versions/*.py"],
    },
    exclude_package_data={"": ["*.py[co]"]},
)
