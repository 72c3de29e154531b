"""Spec files: located by name or path, fields checked with file:line: field errors; packaged specs load."""
import pytest

from recbole_neggen.experiments.bench import BenchSpec
from recbole_neggen.experiments.spec import SpecError, SpecFile, format_field, locate_spec, spec_dir
from recbole_neggen.experiments.tune import TuneSpec, apply_params


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_format_field():
    assert format_field(("models", 1, "name")) == "models[1].name"
    assert format_field(("space", "neg_params.top_n")) == "space.neg_params.top_n"
    assert format_field(()) == "<top level>"


def test_value_errors_name_file_line_and_field(tmp_path):
    path = write(tmp_path, "dataset: synthetic\nseeds: [1, two]\nconfig:\n  epochs: 2\n")
    spec = SpecFile.load(path)
    assert spec.value(("config", "epochs"), int) == 2
    assert spec.value(("config", "missing"), int, 7) == 7
    with pytest.raises(SpecError, match=rf"{path}:2: seeds\[1\]: must be int, got str 'two'"):
        spec.items(("seeds",), int)
    with pytest.raises(SpecError, match=rf"{path}:1: models: required field is missing"):
        spec.value(("models",), list)
    with pytest.raises(SpecError, match=rf"{path}:4: config.epochs: must be str"):
        spec.value(("config", "epochs"), str)
    with pytest.raises(SpecError, match=rf"{path}:4: config.epochs: unknown field; allowed: lr"):
        spec.check_keys(("config",), ["lr"])


def test_booleans_are_not_integers(tmp_path):
    spec = SpecFile.load(write(tmp_path, "num_samples: true\n"))
    with pytest.raises(SpecError, match="num_samples: must be int, got bool"):
        spec.value(("num_samples",), int)


def test_bad_yaml_and_non_mapping_top_level(tmp_path):
    with pytest.raises(SpecError, match="not valid yaml"):
        SpecFile.load(write(tmp_path, "models: [NSRec\n"))
    with pytest.raises(SpecError, match="must be a mapping of fields"):
        SpecFile.load(write(tmp_path, "- a\n- b\n"))


def test_locate_by_name_path_and_error_lists_packaged(tmp_path):
    assert locate_spec("bench_synthetic", "bench_") == spec_dir().resolve() / "bench_synthetic.yaml"
    own = write(tmp_path, "dataset: x\n", "mine.yaml")
    assert locate_spec(str(own), "bench_") == own.resolve()
    with pytest.raises(SpecError, match="no spec 'bench_nope'.*packaged: bench_baby_freedom_cpu, bench_baby_lightgcn, .*bench_synthetic$"):
        locate_spec("bench_nope", "bench_")


@pytest.mark.parametrize("name", sorted(p.stem for p in spec_dir().glob("*.yaml")))
def test_packaged_specs_are_valid(name):
    loader = BenchSpec.load if name.startswith("bench_") else TuneSpec.load
    assert name.startswith(("bench_", "tune_"))
    assert loader(locate_spec(name, ""))


def test_bench_spec_parses_models_strategies_and_defaults(tmp_path):
    spec = BenchSpec.load(write(tmp_path, (
        "dataset: synthetic\n"
        "models: [NSRec, {name: BPR, config: {embedding_size: 32}}, {name: NegGen, strategies: []}]\n"
        "strategies: [rns, {name: dns, label: dns_m4, neg_params: {n_candidates: 4}}]\n"
        "report_metrics: [Recall@20]\n")))
    assert [(m.name, m.takes_negatives, m.config, m.strategies) for m in spec.models] == [
        ("NSRec", True, {}, None), ("BPR", False, {"embedding_size": 32}, None), ("NegGen", True, {}, ())]
    assert [(s.label, s.name, s.params) for s in spec.strategies] == [
        ("rns", "rns", {}), ("dns_m4", "dns", {"n_candidates": 4})]
    assert spec.seeds == (999,) and spec.backbones == () and spec.report_metrics == ("recall@20",)


@pytest.mark.parametrize("text, message", [
    ("dataset: s\nmodels: [NoSuchModel]\n", r":2: models\[0\]: unknown model 'NoSuchModel'"),
    ("dataset: s\nmodels: [NSRec]\nstrategies: [dns, {name: dns}]\n", r":3: strategies\[1\]: label 'dns' used twice"),
    ("dataset: s\nmodels:\n  - {name: NSRec, strategies: [rns, 3]}\n", r":3: models\[0\].strategies\[1\]: must be a strategy"),
    ("dataset: s\nmodels: [NSRec]\nseeds: [1, 1]\n", r":3: seeds: needs distinct integer seeds"),
    ("dataset: s\nmodels: [NSRec]\nseed: [1]\n", r":3: seed: unknown field"),
    ("models: [NSRec]\n", r":1: dataset: required field is missing"),
])
def test_bench_spec_errors(tmp_path, text, message):
    with pytest.raises(SpecError, match=message):
        BenchSpec.load(write(tmp_path, text))


def test_tune_spec_domains(tmp_path):
    spec = TuneSpec.load(write(tmp_path, (
        "model: NSRec\ndataset: synthetic\n"
        "space:\n"
        "  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\n"
        "  n_layers: {choice: [1, 2]}\n"
        "  neg_params.top_n: {grid: [1, 4]}\n"
        "  embedding_size: {randint: [8, 65]}\n"
        "scheduler: {max_t: 9}\n")))
    assert {k: (d.kind, d.values) for k, d in spec.space.items()} == {
        "learning_rate": ("loguniform", (1e-4, 1e-2)), "n_layers": ("choice", (1, 2)),
        "neg_params.top_n": ("grid", (1, 4)), "embedding_size": ("randint", (8, 65))}
    assert spec.max_t == 9 and spec.grace_period == 1 and spec.num_samples == 1
    assert spec.space["neg_params.top_n"].to_ray() == {"grid_search": [1, 4]}
    assert 1e-4 <= spec.space["learning_rate"].to_ray().sample() <= 1e-2


@pytest.mark.parametrize("space, message", [
    ("lr: {loguniform: [0, 1]}", r":4: space.lr.loguniform: needs \[low, high\] with low < high and low > 0"),
    ("lr: {uniform: [2, 1]}", r"space.lr.uniform: needs \[low, high\] with low < high"),
    ("lr: {normal: [0, 1]}", r"space.lr: must be one of \{choice \| grid"),
    ("lr: {choice: []}", r"space.lr.choice: needs at least one value"),
    ("n: {randint: [1.5, 3]}", r"space.n.randint\[0\]: must be int"),
])
def test_tune_spec_domain_errors(tmp_path, space, message):
    with pytest.raises(SpecError, match=message):
        TuneSpec.load(write(tmp_path, f"model: NSRec\ndataset: s\nspace:\n  {space}\n"))


def test_apply_params_sets_nested_keys_without_losing_siblings():
    base = {"neg_params": {"n_candidates": 16, "top_n": 4}, "epochs": 3}
    merged = apply_params(base, {"neg_params.top_n": 1, "learning_rate": 0.01})
    assert merged == {"neg_params": {"n_candidates": 16, "top_n": 1}, "epochs": 3, "learning_rate": 0.01}
    assert base["neg_params"]["top_n"] == 4  # input untouched
    with pytest.raises(ValueError, match="'epochs' is 3, not a mapping"):
        apply_params(base, {"epochs.x": 1})


def test_tune_spec_scheduler_errors(tmp_path):
    head = "model: NSRec\ndataset: s\nspace:\n  lr: {choice: [0.1]}\n"
    with pytest.raises(SpecError, match=r":5: scheduler.max_T: unknown field; allowed: max_t, grace_period"):
        TuneSpec.load(write(tmp_path, head + "scheduler: {max_T: 3}\n"))
    with pytest.raises(SpecError, match=r":5: scheduler: needs max_t >= 1, grace_period >= 1, reduction_factor > 1"):
        TuneSpec.load(write(tmp_path, head + "scheduler: {reduction_factor: 1}\n"))
    with pytest.raises(SpecError, match=r":5: num_samples: must be >= 1, got 0"):
        TuneSpec.load(write(tmp_path, head + "num_samples: 0\n"))
