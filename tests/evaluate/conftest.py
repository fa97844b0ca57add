import pytest


@pytest.fixture(scope="module")
def tiny():
    from axial.testing import tiny_llama

    return tiny_llama(seed=0)
