"""`ltnas rank`: rank correlations (against hand computation and SciPy) and the smoke run of the tool."""

from __future__ import annotations

import json
import random

import pytest

from ltnas.cli import main
from ltnas.config import load_config
from ltnas.errors import LtnasError
from ltnas.metrics import average_ranks, kendall_tau, spearman_rho
from ltnas.search.oneshot import PathSpace
from ltnas.stages.rank import final_population


def test_average_ranks_share_ties():
    assert list(average_ranks([0.3, 0.1, 0.3, 0.2])) == [3.5, 1.0, 3.5, 2.0]


def test_rank_correlations_against_hand_computation():
    a, b = [1, 2, 3, 4], [1, 3, 2, 4]
    # pairs: (1,2)+ (1,3)+ (1,4)+ (2,3)− (2,4)+ (3,4)+ → C = 5, D = 1, τ = 4/6
    assert kendall_tau(a, b) == pytest.approx(4 / 6)
    # ρ = 1 − 6 Σd² / (n(n² − 1)) with d = (0, −1, 1, 0): 1 − 12/60
    assert spearman_rho(a, b) == pytest.approx(0.8)
    assert kendall_tau(a, a[::-1]) == pytest.approx(-1) and spearman_rho(a, a[::-1]) == pytest.approx(-1)
    # ties (τ-b): a = (1, 1, 2), b = (1, 2, 3): C = 2, D = 0, pairs untied in a 2, in b 3 → 2 / √6
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 6**0.5)
    # ranks (1.5, 1.5, 3) and (1, 2, 3): centred (−.5, −.5, 1), (−1, 0, 1) → 1.5 / √(1.5 · 2)
    assert spearman_rho([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / 3**0.5)
    assert kendall_tau([1, 1, 1], [1, 2, 3]) is None and spearman_rho([5, 5], [1, 2]) is None


def test_rank_correlations_agree_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    for _ in range(5):
        a = [rng.choice([0.1, 0.2, 0.3, 0.4, 0.5]) for _ in range(12)]  # many ties
        b = [x + rng.gauss(0, 0.2) for x in a]
        assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
        assert spearman_rho(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)


def test_rank_correlations_refuse_bad_input():
    with pytest.raises(LtnasError, match="same items"):
        kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(LtnasError, match="finite"):
        spearman_rho([1, float("nan"), 3], [1, 2, 3])


def test_rank_smoke_run_and_its_report(tmp_path, capsys):
    """The shipped smoke config end to end: scores per distribution, τ and ρ per pair, the plot; a resume
    reads the scores back instead of training again."""
    out = tmp_path / "run"
    assert main(["rank", "imbnas_rank_smoke", "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "rank" / "rank.json").read_text())
    assert set(result["distributions"]) == {"balanced", "exp-10", "exp-100"}
    assert [(p["a"], p["b"]) for p in result["pairs"]] == [("balanced", "exp-10"), ("balanced", "exp-100"),
                                                           ("exp-10", "exp-100")]
    for entry in result["distributions"].values():
        assert len(entry["scores"]) == len(result["paths"]) == 5 and all(0 <= s <= 1 for s in entry["scores"])
    counts = result["distributions"]["exp-100"]["train_counts"]
    assert max(counts) / min(counts) == pytest.approx(100)
    pair = result["pairs"][0]
    scores = {label: entry["scores"] for label, entry in result["distributions"].items()}
    assert pair["kendall_tau"] == kendall_tau(scores["balanced"], scores["exp-10"])
    assert "balanced vs exp-10: Kendall τ" in printed
    assert (out / "rank" / "plots" / "rank_scatter.png").stat().st_size > 0
    assert "| balanced vs exp-100 |" in (out / "rank" / "rank.md").read_text()
    supernet = out / "rank" / "balanced" / "supernet" / "supernet.pt"
    stamp = supernet.stat().st_mtime_ns
    assert main(["rank", "--resume", str(out), "--no-progress"]) == 0
    assert json.loads((out / "rank" / "rank.json").read_text()) == result
    assert supernet.stat().st_mtime_ns == stamp


def test_final_population_is_the_last_generation(tmp_path):
    space = PathSpace(2, ["skip_connect", "sep_conv_3x3", "max_pool_3x3"])
    rng = random.Random(0)
    records = [{"generation": 1 + i // 4, "fitness": 0.1 * i, "genotype": space.sample(rng).to_dict()}
               for i in range(8)]
    file = tmp_path / "candidates.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in records))
    paths, origin = final_population(file, space)
    assert [p.to_dict() for p in paths] == [r["genotype"] for r in records[4:]]
    assert "generation 2" in origin
    with pytest.raises(LtnasError, match="outside the supernet"):
        final_population(file, PathSpace(2, ["skip_connect"]))
    file.write_text("{not json\n")
    with pytest.raises(LtnasError, match="JSON lines"):
        final_population(file, space)


@pytest.mark.parametrize("override, message", [
    ("rank.distributions={only: {profile: balanced}}", "at least two"),
    ("rank.distributions={a: {profile: balanced}, b: {profile: expo}}", "distribution 'b': profile"),
    ("rank.distributions={a: {profile: balanced}, b: {profile: exp, ratio: 0.5}}", "distribution 'b'"),
    ("rank.paths=2", "rank.paths"),
])
def test_bad_rank_settings_are_one_line_errors(override, message):
    with pytest.raises(LtnasError, match=message) as caught:
        load_config(None, [override])
    assert "\n" not in str(caught.value)


def test_missing_candidates_file_exits_2_with_one_line(tmp_path, capsys):
    code = main(["rank", "imbnas_rank_smoke", "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress",
                 "--candidates", str(tmp_path / "none.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot read rank.candidates" in err
