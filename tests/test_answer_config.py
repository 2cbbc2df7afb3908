"""AnswerConfig: the answering constants as one frozen record that a grid can vary safely."""

from __future__ import annotations

import pytest

from rag.answer_config import DEFAULT, AnswerConfig


def test_with_values_changes_only_the_named_fields_and_keeps_types() -> None:
    cfg = DEFAULT.with_values(keep_margin="0.1", max_quotes="3")
    assert cfg.keep_margin == 0.1 and cfg.max_quotes == 3 and isinstance(cfg.max_quotes, int)
    assert cfg.abstain_below == DEFAULT.abstain_below
    assert DEFAULT.keep_margin != 0.1  # the default itself is untouched


def test_a_misspelt_field_is_an_error_not_a_silent_no_op() -> None:
    with pytest.raises(ValueError, match="keep_margn"):
        AnswerConfig().with_values(keep_margn=0.1)
