"""Packaging beside pyproject.toml: the wheel carries the Alembic scripts as ``erp_api.migrations``.

The checkout's top-level ``alembic/`` stays the one copy of the migrations; the build maps it into the
package, where ``erp_api/migrate.py`` finds it in an installed wheel.
"""

from setuptools import find_packages, setup

MIGRATIONS = "erp_api.migrations"

setup(
    packages=[
        *find_packages(include=["erp_api", "erp_api.*", "cache", "cache.*", "tasks", "tasks.*"]),
        MIGRATIONS,
        f"{MIGRATIONS}.versions",
    ],
    package_dir={MIGRATIONS: "alembic"},
)
