"""The claims registry (ecodistill.report.claims) and the book's sign convention.

- every registered claim quotes words that stand in its source file;
- a claim that flips fails :func:`verify` with its key (at cpu and full), and is only reported
  at smoke; a claim whose frames are empty is "not checkable", never "holds";
- the sign convention (distilled − scratch; negative ΔRMSE = distillation helps) on a frame
  whose sign is known: distilled worse than scratch at every seed and biome;
- the committed cpu results bear out every claim the prose makes today.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecodistill import report
from ecodistill.report import claims

SEEDS = (0, 1, 2, 3, 4)
BIOMES = {"forest": 0.6, "desert": 0.4}  # share of the land cells


def _run_rows(run_id: str, init: str, seed: int, rmse: float, r2_anom: float) -> list[dict]:
    """Tidy test rows of one NDVI student run: global and per-biome RMSE (equal in every
    biome, so the global one is their pooled value), anomaly RMSE and R²."""
    method = "scratch" if init == "scratch" else "kd-l1-offline"
    meta = {"run_id": run_id, "dataset_hash": "abc", "target": "ndvi", "kind": "student", "init": init,
            "method": method, "family": "afno", "n_params": 1000, "flops_per_map": 1e6,
            "alpha": np.nan if init == "scratch" else 0.5, "label_years": -1, "teacher_run_id": "T",
            "seed": seed, "fold": -1, "split": "test"}
    rows = []
    for region in ["global", *(f"biome:{b}" for b in BIOMES)]:
        for metric, value in (("rmse", rmse), ("rmse_anom", rmse), ("r2_anom", r2_anom), ("r2", 0.9)):
            rows.append({**meta, "region": region, "metric": metric, "value": value})
    return rows


@pytest.fixture(scope="module")
def worse_distilled() -> pd.DataFrame:
    """Distilled is worse than scratch at every seed, by 0.002 RMSE: ΔRMSE = +0.002 by the
    book's convention (distilled − scratch), so distillation *raises* the error."""
    rows = []
    for seed in SEEDS:
        rows += _run_rows(f"scratch-afno_s-final-{seed:010x}", "scratch", seed, 0.030 + 0.001 * seed, 0.60)
        rows += _run_rows(f"kd-l1-offline-afno_s_from_teacher-final-{seed:010x}", "distilled", seed,
                          0.032 + 0.001 * seed, 0.55)
    frame = pd.DataFrame(rows)
    frame.attrs["profile"] = "cpu"
    return frame


def test_every_claim_quotes_its_source():
    missing = [f"{c.key}: {c.quote!r} not in {c.source}" for c in claims.REGISTRY.values()
               if not claims.quoted_in_source(c)]
    assert not missing, "claims whose words no longer stand in the prose:\n" + "\n".join(missing)
    assert len(claims.REGISTRY) >= 10


def test_sign_convention_on_a_frame_whose_sign_is_known(worse_distilled):
    w = report.wide(worse_distilled)
    scratch, distilled = w[w["init"] == "scratch"], w[w["init"] == "distilled"]
    pair = report.paired_difference(worse_distilled, scratch, distilled, n_boot=200)
    assert pair["diff"] == pytest.approx(0.002)  # distilled − scratch: positive, a higher error
    assert pair["ci_low"] == pytest.approx(0.002) and pair["ci_high"] == pytest.approx(0.002)
    assert pair["d_r2_anom"] == pytest.approx(-0.05)  # less skill: negative
    assert pair["wins"] == 0 and pair["n_blocks"] == len(BIOMES)
    pairs = report.paired_comparison(worse_distilled, n_boot=200)
    assert pairs["diff"].iloc[0] > 0
    numbers = report.summary_numbers(report.student_table(worse_distilled), pairs)
    assert numbers["verdict"].iloc[0] == "hurts"
    sentence = report.size_findings(numbers)[0]
    assert "raises the test RMSE: ΔRMSE = +2.00 [+2.00, +2.00] ×10⁻³, an interval above zero" in sentence
    assert "lowers" not in sentence
    assert "distilled − scratch" in report.SIGN_CONVENTION and "negative ΔRMSE" in report.SIGN_CONVENTION
    # the claims read the same sign
    r = claims.Results("cpu", numbers=numbers)
    assert claims.REGISTRY["some-size-hurts"].check(r) and claims.REGISTRY["no-size-helps"].check(r)


def test_a_flipped_claim_fails_the_build_naming_it():
    """A plain claim whose frame flips fails :func:`verify` at cpu naming it and its source, and
    is only reported at smoke."""
    table = pd.DataFrame({"student": ["afno_s", "mlp_s"], "r2_mean": [0.98, 0.97], "r2_anom_mean": [0.6, 0.5]})
    flipped = table.assign(r2_mean=[0.5, 0.4])
    keys = ["raw-skill-is-where", "disc-raw-above-anomaly"]
    assert (claims.verify(claims.Results("cpu", table=table), keys)["status"] == "holds").all()
    with pytest.raises(claims.ClaimError, match="claim raw-skill-is-where no longer holds") as err:
        claims.verify(claims.Results("cpu", table=flipped), keys)
    assert "disc-raw-above-anomaly" in str(err.value) and "book/intro.md" in str(err.value)
    shown = claims.verify(claims.Results("smoke", table=flipped), keys)
    assert set(shown["status"]) == {"does not hold"}


def test_a_flipped_result_flips_the_chosen_wording(worse_distilled):
    """The conclusions' alternatives follow the results: distillation that raises the error at
    every seed reads "at no student size ... lower"; the same numbers flipped read "at some"."""
    numbers = report.summary_numbers(report.student_table(worse_distilled),
                                     report.paired_comparison(worse_distilled, n_boot=200))
    flipped = numbers.assign(diff=-numbers["diff"], ci_low=-numbers["ci_high"], ci_high=-numbers["ci_low"])
    assert claims.chosen(claims.Results("cpu", numbers=numbers), "brief_sizes").key == "no-size-helps"
    assert claims.chosen(claims.Results("cpu", numbers=numbers), "brief_hurts").key == "some-size-hurts"
    assert claims.chosen(claims.Results("cpu", numbers=flipped), "brief_sizes").key == "some-size-helps"
    assert claims.chosen(claims.Results("cpu", numbers=flipped), "brief_hurts").key == "no-size-hurts"
    keys = [c.key for c in claims.group_claims("brief_sizes")]
    status = claims.verify(claims.Results("cpu", numbers=flipped), keys).set_index("claim")["status"]
    assert status["some-size-helps"] == "holds" and status["no-size-helps"] == "alternative not chosen"


def test_a_claim_without_results_is_not_checkable():
    empty = claims.Results("cpu", numbers=pd.DataFrame(columns=["student", "verdict"]))
    table = claims.verify(empty, ["no-size-helps"])
    assert claims.chosen(empty, "brief_sizes") is None
    assert table["status"].iloc[0] == "not checkable: no numbers results"


def test_registry_refuses_unknown_frames_and_duplicates():
    with pytest.raises(ValueError, match="unknown frames"):
        claims.claim("x", "x", "book/intro.md", needs=("nonsense",))
    with pytest.raises(ValueError, match="registered twice"):
        claims.claim("no-size-helps", "x", "book/intro.md", needs=("numbers",))(lambda r: True)
    with pytest.raises(KeyError, match="unknown result frames"):
        claims.Results("cpu", nonsense=1)


def test_the_committed_cpu_results_bear_out_the_prose():
    """No plain claim fails (those whose results are not in yet are not checkable); of every group of alternatives exactly one holds (the others are
    not chosen), or the group's results do not exist yet (not checkable)."""
    table = claims.verify(claims.Results("cpu"))
    fine = table["status"].isin(["holds", "alternative not chosen"]) | table["status"].str.startswith("not checkable")
    assert fine.all(), table[~fine].to_string()
    plain = table[[claims.REGISTRY[k].group is None for k in table["claim"]]]
    assert (plain["status"] == "holds").sum() >= 5, plain.to_string()  # the design, teacher and data claims
    assert (plain["status"] != "does not hold").all(), plain[plain["status"] == "does not hold"].to_string()
    for group in claims.groups():
        rows = table[table["claim"].isin([c.key for c in claims.group_claims(group)])]
        assert (rows["status"] == "holds").sum() == 1 or rows["status"].str.startswith("not checkable").all(), group


def test_fluxnet_anomaly_range_is_that_of_the_table():
    """The FLUXNET chapter's sentence on anomaly R² quotes the extremes of the table's column."""
    from ecodistill import fluxnet
    from ecodistill.fluxnet import report as flux

    results = flux.load_results("cpu", fluxnet.flux_profile("cpu"))
    if results.empty:
        pytest.skip("no committed cpu FLUXNET results")
    table = flux.model_table(results)
    for target, rows in table.groupby("target"):
        means = rows["R² anomalies"].str.split(" ± ").str[0].astype(float)
        line = next(s for s in flux.findings(results) if s.startswith(f"{target.upper()}: R² of monthly"))
        assert f"ranges {means.min():.3f} to {means.max():.3f}" in line
