"""Read an operator's YAML file with errors that name the file and its role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from os_onboard.exceptions import ConfigError


def read_yaml(path: str | Path, what: str) -> Any:
    """Parse ``path``; ``what`` names it in errors (e.g. "hosts file").

    :raises ConfigError: the file cannot be read or is not valid YAML.
    """
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from exc
