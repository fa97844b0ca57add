import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    # Tests must never touch a user's real cache; the embedded model's converted folder is reused across
    # test runs through AXIAL_TEST_HOME (default: a folder inside the repo's ignored .venv).
    os.environ.setdefault("AXIAL_HOME", str(Path(os.environ.get("AXIAL_TEST_HOME", REPO / ".venv" / "axial-home"))))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (users' checkouts lack it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny():
    from axial.testing import tiny_llama

    return tiny_llama()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from axial.testing import save_tiny_llama

    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def embedded():
    """The real embedded model (fp32), loaded once per test session."""
    from axial.models import load_model

    return load_model("embedded", dtype="fp32")
