"""The real embedder: lanes of one-thread operators give the same vectors as one encode."""

from __future__ import annotations

import numpy as np


def test_lanes_give_the_vectors_of_one_encode(real_embedder) -> None:
    import torch

    texts = [f"Warfarin dose {i} mg daily for patients aged {20 + i} years, checked by INR." * (1 + i % 3)
             for i in range(40)]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert real_embedder._lanes(len(texts)) == 2
        lanes = real_embedder.embed(texts)
        assert torch.get_num_threads() == 2  # restored after the lanes ran
        one = real_embedder._encode(texts)
    finally:
        torch.set_num_threads(before)
    assert lanes.shape == (40, real_embedder.dim) and lanes.dtype == np.float32
    np.testing.assert_allclose(lanes, one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(lanes, axis=1), 1.0, atol=1e-5)


def test_one_batch_is_one_lane(real_embedder) -> None:
    assert real_embedder._lanes(real_embedder.batch_size) == 1


def test_one_text_on_one_thread_gives_the_same_vector(real_embedder) -> None:
    import torch

    text = ["What is the usual starting dose of warfarin?"]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        one = real_embedder.embed(text)
        assert torch.get_num_threads() == 2
        np.testing.assert_allclose(one, real_embedder._encode(text), atol=1e-5)
    finally:
        torch.set_num_threads(before)
