from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


def read_data(*parts: str) -> str:
    return DATA.joinpath(*parts).read_text()
