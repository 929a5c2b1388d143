"""Where a path written in the configuration points: one rule for loading, ``check`` and the transports.

A ``~`` is the user's home directory; any other relative path is relative to the configuration file's folder
(``base_dir``), not to the working directory of whatever process reads it (docs/configuration.md).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["configured_path"]


def configured_path(value: str, base_dir: Path) -> Path:
    """``value`` as written in the configuration, resolved against ``base_dir`` (the file's folder)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path
