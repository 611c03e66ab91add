"""What the trust tests share."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a shared CPU: extra threads only wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
