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


def test_encodes_and_token_counts_from_many_threads_give_the_right_results(real_embedder) -> None:
    """The answerer counts word pieces per question term while other threads embed (the app serves
    sessions from threads): no call may change another's tokenisation."""
    import threading

    texts = [" ".join(f"warfarin{j % 7} dose" for j in range(3 + 5 * i)) for i in range(40)]  # several batches
    short = ["What is the INR target for warfarin?", "metformin"]
    ref, ref_short = real_embedder.embed(texts), real_embedder.embed(short)
    counts = real_embedder.count_tokens(texts)
    errors: list[BaseException] = []
    stop = threading.Event()

    def keep(fn) -> None:
        try:
            while not stop.is_set():
                fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=keep, args=(lambda: _same(real_embedder.count_tokens(texts), counts),)),
               threading.Thread(target=keep, args=(lambda: np.testing.assert_allclose(
                   real_embedder.embed(short), ref_short, atol=1e-5),))]
    for w in workers:
        w.start()
    try:
        for _ in range(3):
            np.testing.assert_allclose(real_embedder.embed(texts), ref, atol=1e-5)
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    assert not errors, errors[:3]


def _same(a, b) -> None:
    assert a == b
