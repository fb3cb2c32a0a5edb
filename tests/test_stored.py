"""Stored job results read back through the metrics contract (tasks/stored.py): many at once, as one at a time."""

from __future__ import annotations

import json
import logging

import pytest

from rnnbench import results
from rnnbench.config import from_preset
from rnnbench.train import train_and_evaluate
from tasks import dataset_store
from tasks.stored import load_checked, load_checked_all


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Three smoke jobs on adding, trained and stored; a fourth spec that has no stored result."""
    out = tmp_path_factory.mktemp("stored")
    config = from_preset("smoke", out=str(out))
    runs = config.runs()
    specs = [s for s in runs if s.problem == "adding"][:3] + [next(s for s in runs if s.problem != "adding")]
    assert len(specs) == 4
    for spec in specs[:3]:
        for dataset in spec.datasets():
            dataset_store.build(dataset, config.dataset_root)
        results.save(str(out), spec, train_and_evaluate(spec, dataset_store.loader(config.dataset_root)))
    return str(out), specs


def test_many_sound_results_read_at_once_equal_each_read_alone(stored):
    out, specs = stored
    logger = logging.getLogger("test")
    together = load_checked_all(out, specs, logger)
    assert list(together) == [spec.run_id for spec in specs[:3]]  # in the order asked; the missing one absent
    for spec in specs[:3]:
        assert together[spec.run_id] == load_checked(out, spec, logger)
    assert load_checked_all(out, [specs[3]], logger) == {}


@pytest.mark.parametrize("damage", [
    pytest.param(lambda p: p["row"].update(test_metric="0.1"), id="string-for-a-number"),
    pytest.param(lambda p: p["row"].update(steps_done=p["row"]["steps"] + 1), id="impossible-value"),
    pytest.param(lambda p: p["curve"].append(dict(p["curve"][-1])), id="duplicate-curve-point"),
    pytest.param(lambda p: p["row"].update(run_id="someone-else"), id="another-run"),
])
def test_a_damaged_result_among_sound_ones_is_named_and_only_it_dropped(stored, damage, caplog, tmp_path):
    source, specs = stored
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    for spec in specs[:3]:
        path = results.result_path(str(out), spec.run_id)
        payload = json.loads(open(results.result_path(source, spec.run_id)).read())
        if spec is specs[1]:
            damage(payload)
        with open(path, "w") as f:
            json.dump(payload, f)
    with caplog.at_level(logging.WARNING, logger="test"):
        together = load_checked_all(str(out), specs, logging.getLogger("test"))
    assert list(together) == [specs[0].run_id, specs[2].run_id]
    damaged = results.result_path(str(out), specs[1].run_id)
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [f"damaged stored result {damaged}"]
