"""The draft advisor ranks real drafts by predicted speedup, skips what cannot run, and resolves --draft auto."""

import json

import numpy as np
import pytest
from ase.build import molecule

from lsd_engine import LangevinParams, models, systems
from lsd_engine.draft_choice import DraftCandidate, DraftRanking, candidate_drafts, decide_learning, suggest_draft
from lsd_engine.learning import make_correction
from lsd_engine.learning.payoff import learning_payoff
from lsd_engine.errors import LSDError
from lsd_engine.runconfig import RunConfig, build_models

PARAMS = LangevinParams(timestep_fs=0.5, temperature_K=300.0, friction_per_ps=10.0)


def test_ranking_puts_the_better_draft_first_and_explains_skips():
    atoms = systems.alanine_dipeptide()
    target = models.create("ani-1x", atoms)
    lines = []
    ranking = suggest_draft(atoms, target, PARAMS, lookahead=4, candidates=["emt", "amber14", "no-such-model"],
                            n_calibration_steps=60, n_target_states=10, log=lines.append)
    names = [c.name for c in ranking.candidates]
    assert names == ["amber14", "emt", "no-such-model"] and ranking.winner == "amber14"
    amber, emt, missing = ranking.candidates
    assert amber.acceptance_by_depth[0] > 0.5 > emt.acceptance_by_depth[0]  # emt is made for metals
    assert amber.expected_steps_per_round == pytest.approx(1 + sum(np.cumprod(amber.acceptance_by_depth[:4])))
    assert emt.predicted_speedup < amber.predicted_speedup
    assert missing.skipped and "unknown model" in missing.skipped
    assert "amber14" in lines[0] and "skipped" in lines[0] and f"{ranking.seconds:.1f} s" in lines[0]
    assert ranking.no_gain_note() == ""  # ANI-1x batches: amber14 is predicted to pay
    json.dumps(ranking.to_dict())


def _unbatched_ranking(predicted_speedup: float) -> DraftRanking:
    """A ranking as the advice makes it for a 1 ms target that does not batch (B states cost B calls), with
    stated costs: what suggest_draft measures varies with the machine's load."""
    gfnff = DraftCandidate("gfn-ff", predicted_speedup=predicted_speedup, lookahead=4, expected_steps_per_round=3.5,
                           acceptance_by_depth=list(0.9 ** np.arange(1, 5)), draft_step_ms=0.15)
    return DraftRanking("gfn2-xtb", 4, False, [gfnff], {1: 1.0, 2: 2.0, 5: 5.0}, seconds=1.0)


def test_a_target_that_does_not_batch_gets_a_warning_that_no_draft_pays_in_sync_rounds():
    """GFN2-xTB through tblite evaluates a batch state by state: K + 1 states cost K + 1 calls, so even a
    good draft cannot win synchronous rounds, and the advice says so instead of promising a speedup."""
    assert not models.get_spec("gfn2-xtb").batched
    ranking = _unbatched_ranking(0.70)
    note = ranking.no_gain_note()
    assert note.startswith("no installed draft is predicted to beat plain gfn2-xtb MD in synchronous rounds")
    assert "best: gfn-ff 0.70x" in note and "a batch of 5 states costs 5.0x one target call" in note
    assert ranking.to_dict()["no_gain_note"] == note and _unbatched_ranking(1.2).no_gain_note() == ""
    # K = 1-4 rounds of a 1 ms target: learning's own cost cannot be won back, so the run uses constant EC
    ethanol = molecule("CH3CH2OH")
    config = RunConfig(system="ethanol.xyz", draft="gfn-ff", target="gfn2-xtb", lookahead=4)
    payoff = decide_learning(config, ethanol, ranking, log=None)
    assert not payoff.pays and config.draft_learning == "none"
    assert payoff.perfect_learning_speedup < payoff.constant_ec_speedup
    assert ranking.to_dict()["learning_payoff"]["pays"] is False
    async_config = RunConfig(system="ethanol.xyz", draft="gfn-ff", target="gfn2-xtb", lookahead=4, mode="async")
    assert decide_learning(async_config, ethanol, ranking, log=None) is None  # the bound is for sync rounds
    assert async_config.draft_learning == "online"


def test_learning_pays_when_rounds_are_long_and_not_when_the_target_is_cheap_and_unbatched():
    """The bound with given target costs: a batched 30 ms target (ANI-1x-like) leaves room for a
    learned draft; an unbatched 1 ms one does not, whatever the learned draft's acceptance."""
    atoms = systems.alanine_dipeptide()
    correction = make_correction("online", atoms)
    profile = 0.85 ** np.arange(1, 9)  # constant EC's acceptance by depth
    batched = learning_payoff(profile, 3e-4, {1: 0.030, 2: 0.032, 9: 0.050}, correction, atoms.positions,
                              range(1, 9))
    assert batched.pays and batched.perfect_learning_speedup > 3.0 > batched.constant_ec_speedup > 2.0
    unbatched = learning_payoff(profile, 3e-4, {1: 0.001, 2: 0.002, 9: 0.009}, correction, atoms.positions,
                                range(1, 9))
    assert not unbatched.pays and unbatched.constant_ec_lookahead == 1
    assert set(unbatched.observe_s_by_round_size) == set(range(2, 10))
    assert correction.n_labels == 0  # timed on copies


def test_drafts_that_cannot_build_are_skipped_and_none_left_is_an_error():
    ethanol = molecule("CH3CH2OH")  # no topology file: amber14 cannot type it
    target = models.create("gfn-ff", ethanol)
    assert "gfn-ff" not in candidate_drafts("gfn-ff") and "amber14" in candidate_drafts("gfn-ff")
    ranking = suggest_draft(ethanol, target, PARAMS, lookahead=2, candidates=["amber14"], log=None)
    assert ranking.candidates[0].skipped
    with pytest.raises(LSDError, match="no draft could be calibrated.*amber14"):
        ranking.winner


def test_auto_draft_in_a_run_configuration_records_the_winner():
    config = RunConfig(system="alanine-dipeptide-vacuum", draft="auto", target="gfn-ff", lookahead=4, steps=10)
    draft, target = build_models(config, systems.alanine_dipeptide())
    # amber14 (0.8 acceptance at depth 1 against GFN-FF) beats emt (made for metals)
    assert config.draft == draft.name == "amber14" and target.name == "gfn-ff"
    assert config.to_dict()["draft"] == "amber14"  # what summaries and checkpoints record


def test_a_draft_that_costs_as_much_as_the_target_is_skipped_after_one_call():
    atoms = systems.alanine_dipeptide()
    target = models.create("amber14", atoms)  # about 0.1 ms a call: GFN-FF (about 0.4 ms) cannot beat it
    ranking = suggest_draft(atoms, target, PARAMS, lookahead=4, candidates=["gfn-ff"], log=None)
    (gfnff,) = ranking.candidates
    assert gfnff.skipped and "cannot speed the target up" in gfnff.skipped
    assert gfnff.calibration_s < 5.0  # one timed call, no calibration run
    with pytest.raises(LSDError, match="no draft could be calibrated.*cannot speed"):
        ranking.winner
