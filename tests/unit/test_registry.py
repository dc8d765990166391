import pytest

from harmtrace.data.adapters import ADAPTERS
from harmtrace.data.air_taxonomy import LOADERS
from harmtrace.data.registry import UnknownDatasetError, get_dataset, load_registry

MIRRORED = {
    "openai-moderation",
    "simplesafetytests",
    "harmbench",
    "air-bench-2024",
    "hh-rlhf-harmless",
    "air-2024-taxonomy",
}


def test_registry_lists_mirrored_and_network_datasets():
    reg = load_registry()
    assert MIRRORED <= set(reg)
    assert {"wildguardtest", "sorry-bench", "air-bench-2024-full", "xstest"} <= set(reg)
    assert {n for n, s in reg.items() if s.mirrored} == MIRRORED


def test_every_dataset_has_provenance_and_an_implemented_adapter():
    for spec in load_registry().values():
        assert spec.license and spec.citation and spec.homepage.startswith("https://")
        implemented = ADAPTERS if spec.kind == "records" else LOADERS
        assert spec.adapter in implemented, spec.name
        assert spec.sources and all(s.files for s in spec.sources)


def test_gated_datasets_name_their_token():
    gated = [s for s in load_registry().values() if s.access == "gated"]
    assert {s.name for s in gated} == {"wildguardtest", "sorry-bench"}
    assert all(s.token_env == "HF_TOKEN" for s in gated)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UnknownDatasetError, match="known datasets: .*hh-rlhf-harmless"):
        get_dataset("nope")


def test_mirrored_datasets_have_expected_record_counts():
    reg = load_registry()
    counts = {n: reg[n].expected_records for n in MIRRORED if reg[n].kind == "records"}
    assert counts == {
        "openai-moderation": 1680,
        "simplesafetytests": 100,
        "harmbench": 200,
        "air-bench-2024": 80,
        "hh-rlhf-harmless": 4624,
    }


def test_is_registered_and_source_lookup():
    from harmtrace.data.registry import is_registered

    assert is_registered("harmbench") and not is_registered("my-set")
    spec = get_dataset("harmbench")
    assert spec.source_named("upstream").files[0].sha256 is None
    assert spec.source_named("nope") is None
