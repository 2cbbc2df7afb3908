"""Drug synonyms from the packaged dictionary (plus the checked-in supplement) and clinical equivalents."""

from __future__ import annotations

import sys

import pytest

from rag import synonyms
from rag.synonyms import canonical, clinical_mentions, drug_mentions, names_of

# (a name, another name of the same drug): INN / USAN / brand pairs
PAIRS = [
    ("paracetamol", "acetaminophen"), ("Lipitor", "atorvastatin"), ("glibenclamide", "glyburide"),
    ("Coumadin", "warfarin"), ("Glucophage", "metformin"), ("Cipro", "ciprofloxacin"), ("Advil", "ibuprofen"),
    ("Motrin", "ibuprofen"), ("Zestril", "lisinopril"), ("Prinivil", "lisinopril"), ("Amoxil", "amoxicillin"),
    ("Biltricide", "praziquantel"), ("acetylsalicylic acid", "aspirin"), ("salbutamol", "albuterol"),
    # from DRUG_SUPPLEMENT: the dictionary lacks these
    ("Coartem", "artemether-lumefantrine"), ("artemether + lumefantrine", "coartem"), ("adrenaline", "epinephrine"),
]


@pytest.mark.parametrize(("name", "other"), PAIRS)
def test_names_of_a_drug_include_its_other_names(name: str, other: str) -> None:
    assert other.lower() in names_of(name)
    assert name.lower() in names_of(other)
    assert canonical(name) == canonical(other) is not None


def test_the_us_adopted_name_is_canonical() -> None:
    assert canonical("paracetamol") == "acetaminophen"
    assert canonical("glibenclamide") == "glyburide"
    assert canonical("LIPITOR") == "atorvastatin"


def test_unknown_words_name_no_drug() -> None:
    assert names_of("kidney") == frozenset()
    assert canonical("tablets") is None
    assert canonical("the") is None


def test_different_drugs_are_not_synonyms() -> None:
    assert "ibuprofen" not in names_of("acetaminophen")
    # a component is not its combination: artemether alone is not Coartem
    assert "coartem" not in names_of("artemether")
    assert canonical("artemether") == "artemether"


def test_supplement_joins_groups_the_dictionary_splits() -> None:
    # the dictionary files co-trimoxazole apart from Bactrim's trimethoprim/sulfamethoxazole
    assert canonical("co-trimoxazole") == canonical("Bactrim") == canonical("trimethoprim/sulfamethoxazole")


def test_drug_mentions_find_multi_word_and_brand_names_with_their_spans() -> None:
    text = "Is acetylsalicylic acid safe with Coumadin, or should I use Cipro XR?"
    found = drug_mentions(text)
    assert [m.canonical for m in found] == ["aspirin", "warfarin", "ciprofloxacin"]
    assert [text[m.start:m.end] for m in found] == ["acetylsalicylic acid", "Coumadin", "Cipro XR"]
    assert [m.text for m in found] == ["acetylsalicylic acid", "Coumadin", "Cipro XR"]
    assert "warfarin" in found[1].names


def test_drug_mentions_take_the_longest_name_at_a_place() -> None:
    # a salt name is one mention of its drug, and a combination is one mention, not its two components
    assert [m.canonical for m in drug_mentions("METFORMIN HYDROCHLORIDE TABLETS")] == ["metformin"]
    assert [m.canonical for m in drug_mentions("dose of artemether-lumefantrine")] == ["artemether-lumefantrine"]
    assert [m.canonical for m in drug_mentions("artemether + lumefantrine twice daily")] == ["artemether-lumefantrine"]


def test_a_text_naming_no_drug_has_no_mentions() -> None:
    assert drug_mentions("What should be checked before surgery in a patient with kidney problems?") == []


@pytest.mark.parametrize(("lay", "professional"), [
    ("kidney", "renal"), ("liver", "hepatic"), ("side effects", "adverse reaction"), ("breastfeeding", "lactation"),
    ("pregnant", "pregnancy"), ("children", "pediatric"), ("children", "paediatric"),
    ("heart attack", "myocardial infarction"),
])
def test_clinical_terms_carry_their_equivalents(lay: str, professional: str) -> None:
    found = clinical_mentions(f"What about {lay} here?")
    assert any(professional in m.names and m.text == lay for m in found)


def test_clinical_mentions_report_a_phrase_and_the_words_inside_it() -> None:
    found = {m.text: m.names for m in clinical_mentions("Dose in kidney problems?")}
    assert "renal impairment" in found["kidney problems"]
    assert "renal" in found["kidney"]


def test_the_dictionary_is_read_without_importing_the_package() -> None:
    # importing drug_named_entity_recognition builds a fuzzy index and reads ~/.omop_cache.pkl; only its
    # data file is read (no test imports the package itself)
    assert canonical("Tylenol") == "acetaminophen"
    assert "drug_named_entity_recognition" not in sys.modules


def test_missing_package_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.errors import ConfigError

    monkeypatch.setattr(synonyms.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="drug-named-entity-recognition.*pip install"):
        synonyms._load_package_data()
