"""The README's generated tables, from small result files committed in results/readme/.

    python scripts/readme_numbers.py collect [NAME...]  # after re-running a study
    python scripts/readme_numbers.py           # rewrite the README's generated tables
    python scripts/readme_numbers.py --check   # exit 1 if the README differs (make test runs it)

``results/readme/robust_study.json`` is written by ``scripts/robust_study.py --readme``.
A generated table sits between ``<!-- table:NAME -->`` and ``<!-- /table -->`` in the
README; its numbers come only from ``results/readme/NAME.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "results" / "readme"
README = ROOT / "README.md"


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def collect_deadline(runs: Path) -> dict:
    """The 2x-deadline study (README "Prune to a deadline") from its run folder."""
    def held_out(name: str) -> list[float]:
        result = _load(runs / f"eval-{name}.json")
        return [result["mean"], result["ci95"]]

    sizes = {Path(r["agent"]).parent.name or "dense": r["params"]
             for r in _load(runs / "latency.json")["rows"]}
    planners = _load(runs / "latency-planners.json")
    study = {"dense": {"return": held_out("dense"), "params": sizes["dense"]},
             "iterations=2": {"return": held_out("iter2"),
                              "step_ms": planners["iterations=2"]["median_ms"],
                              "dense_step_ms": planners["iterations=4 (shipped)"]["median_ms"]},
             "prior": {"return": held_out("prior"),
                       "step_ms": planners["iterations=0"]["median_ms"]}}
    for method in ("cmaes", "magnitude"):
        report = _load(runs / method / "report.json")
        study["dense"].setdefault("step_ms", report["latency"]["dense"]["median_ms"])
        study[method] = {"return": held_out(method), "params": sizes[method],
                         "step_ms": report["latency"]["pruned"]["median_ms"],
                         "speedup": report["latency"]["speedup"],
                         "predicted_speedup": report["latency"]["predicted_speedup"]}
    tuned = _load(runs / "cmaes-ft" / "report.json")["finetune"]
    study["cmaes-ft"] = {"kept": tuned["kept"], "validation": tuned["metric"],
                         "untuned_validation": tuned["untuned_metric"]}
    return study


def render_deadline(study: dict) -> str:
    dense = study["dense"]

    def ret(row: dict) -> str:
        return f"{row['return'][0]:.1f} +- {row['return'][1]:.1f}"

    def pruned(row: dict) -> str:
        return f"{row['params']:,} ({100 * (1 - row['params'] / dense['params']):.0f}% pruned)"

    cmaes, magnitude, tuned = study["cmaes"], study["magnitude"], study["cmaes-ft"]
    iter2, prior = study["iterations=2"], study["prior"]
    rows = [
        ("dense MPPI, 4 iterations x 256 samples", f"{dense['step_ms']:.1f} (1x)",
         f"{dense['params']:,}", ret(dense)),
        ("`--speedup 2 --method cmaes --budget 16 --no-planner-budgets` (search on 4 "
         "episodes capped at 400 env steps)",
         f"{cmaes['step_ms']:.1f} ({cmaes['speedup']:.2f}x measured, "
         f"{cmaes['predicted_speedup']:.2f}x predicted)", pruned(cmaes), ret(cmaes)),
        ("the same, `--finetune 2000`",
         f"({'kept' if tuned['kept'] else 'not kept'}: {tuned['validation']:.1f} vs "
         f"{tuned['untuned_validation']:.1f} untuned on validation episodes)", "",
         ret(cmaes) if not tuned["kept"] else "see report"),
        ("`--speedup 2 --method magnitude --no-planner-budgets`", f"{magnitude['step_ms']:.1f} "
         f"({magnitude['speedup']:.2f}x measured)", pruned(magnitude), ret(magnitude)),
        ("dense MPPI, `--planner iterations=2`", f"{iter2['step_ms']:.1f} "
         f"({iter2['dense_step_ms'] / iter2['step_ms']:.1f}x, against {iter2['dense_step_ms']:.1f}"
         " dense in the same run)", f"{dense['params']:,}", ret(iter2)),
        ("policy prior alone, `--planner iterations=0`", f"{prior['step_ms']:.2f} (about "
         f"{round(iter2['dense_step_ms'] / prior['step_ms'], -1):.0f}x, same run as the "
         "line above)", "encoder + pi only", ret(prior)),
    ]
    return _table(["controller", "step ms (speed-up)", "params of the networks", "return"],
                  rows)


def collect_deadline_budgets(runs: Path) -> dict:
    """The 2x deadline with planner budgets screened (README "Prune to a deadline"): the
    screened options, the held-out check, and dense vs pruned timed in one run."""
    report = _load(runs / "budgets" / "report.json")
    timed = {Path(r["agent"]).parent.name or "dense": r
             for r in _load(runs / "latency-budgets.json")["rows"]}
    check = report["held_out"]
    return {**report["planner_budget"],
            "held_out": {name: [check[name]["metric"], check[name]["ci95"]]
                         for name in ("dense", "pruned")},
            "step_ms": {"dense": timed["dense"]["median_ms"],
                        "pruned": timed["budgets"]["median_ms"]},
            "predicted_speedup": report["latency"]["predicted_speedup"]}


def render_deadline_budgets(study: dict) -> str:
    chosen, own, step = study["chosen"], study["own"], study["step_ms"]
    rows = []
    for o in study["options"]:
        planner = f"{o['iterations']} x {o['samples']}" if o["iterations"] else \
            "policy prior alone"
        if (o["iterations"], o["samples"]) == (own["iterations"], own["samples"]):
            planner += " (the agent's own)"
        if o == chosen:
            planner = f"**{planner}: chosen**"
        cut = f"{o['network_saving']:.0%} of its time" if o["network_saving"] else "none"
        rows.append((planner, f"{o['step_ms']:.1f}", cut,
                     f"{o['metric']:.1f} +- {o['ci95']:.1f}"))
    dense, pruned = study["held_out"]["dense"], study["held_out"]["pruned"]
    rows.append(("held out, dense (10 full episodes)", f"{step['dense']:.1f}", "",
                 f"{dense[0]:.1f} +- {dense[1]:.1f}"))
    rows.append((f"held out, chosen ({pruned[0] / dense[0]:.1%} of dense)",
                 f"{step['pruned']:.1f} ({step['dense'] / step['pruned']:.2f}x measured, "
                 f"{study['predicted_speedup']:.2f}x predicted)", "",
                 f"{pruned[0]:.1f} +- {pruned[1]:.1f}"))
    return _table(["MPPI iterations x samples", "step ms", "network cut (magnitude)",
                   "return (search episodes: 4 x 400 steps)"], rows)


def render_bench_latency(bench: dict) -> str:
    rows = []
    dense = {(r["agent"], r["threads"]): r["measured_ms"] for r in bench["rows"]
             if r["plan"] == "dense"}
    for r in bench["rows"]:
        if r["plan"] == "dense":
            continue
        plan = (f"magnitude {r['plan'].split('=')[1]} of params" if r["plan"].startswith("params")
                else f"`--speedup {r['plan'].split('=')[1]}` (magnitude)")
        rows.append((f"{r['agent']} (dense {dense[r['agent'], r['threads']]:.2f} ms)",
                     str(r["threads"]), plan, f"{r['predicted_ms']:.2f}",
                     f"{r['measured_ms']:.2f}", f"{r['error_pct']:+.1f}%"))
    return _table(["agent", "threads", "plan", "predicted ms", "measured ms", "error"], rows)


def collect_bench_latency_repeats(runs: Path) -> dict:
    """Prediction errors of repeated whole runs of scripts/bench_latency.py, by agent and
    thread count: how often within 15%, and the largest."""
    errors: dict[str, list[float]] = {}
    files = sorted(runs.glob("run_*.json"))
    for path in files:
        for row in _load(path)["rows"]:
            if "error_pct" in row:
                errors.setdefault(f"{row['agent']}|{row['threads']}", []).append(
                    row["error_pct"])
    return {"runs": len(files), "errors": errors}


def render_bench_latency_repeats(study: dict) -> str:
    rows = []
    for key, errors in study["errors"].items():
        agent, threads = key.split("|")
        within = sum(abs(e) <= 15 for e in errors)
        rows.append((agent, threads, f"{within} of {len(errors)}",
                     f"{max(errors, key=abs):+.1f}%"))
    return _table(["agent", "threads", f"predictions within 15% ({study['runs']} runs)",
                   "largest error"], rows)


def collect_backends(runs: Path, dense_eval: Path) -> dict:
    """Step times per backend (one ``rlprune latency`` run) and the returns evaluated."""
    rows = {r["backend"]: {"step_ms": r["median_ms"], "speedup": r["speedup"]}
            for r in _load(runs / "latency.json")["rows"]}
    for backend, path in [("eager", dense_eval),
                          *((b, runs / f"eval-{b}.json") for b in rows if b != "eager")]:
        if path.is_file() and path.stat().st_size:
            result = _load(path)
            rows[backend]["return"] = [result["mean"], result["ci95"]]
    return rows


def render_backends(rows: dict) -> str:
    return _table(["backend", "step ms (speed-up)", "return"], [
        (f"`{name}`", f"{row['step_ms']:.1f} ({row['speedup']:.2f}x)",
         f"{row['return'][0]:.1f} +- {row['return'][1]:.1f}" if "return" in row
         else "not measured") for name, row in rows.items()])


def collect_sweep(run: Path) -> dict:
    """Held-out returns per sparsity and method, and the dense agent's, from a sweep's
    run folder (``sweep.json``); with the sparsity methods achieved where it missed the
    target by more than the tolerance (PyTorch's own structured pruning does)."""
    saved = _load(run / "sweep.json")
    rows, tol = saved["rows"], saved["settings"]["tol"]
    dense = next(r for r in rows if r["method"] == "dense")
    table: dict[str, dict[str, float]] = {}
    achieved: dict[str, list[float]] = {}
    for row in rows:
        if row["method"] != "dense":
            table.setdefault(f"{row['target']:g}", {})[row["method"]] = row["metric"]
            achieved.setdefault(row["method"], []).append(row["sparsity"])
    missed = {method: shares for method, shares in achieved.items()
              if any(abs(share - float(rho)) > tol for share, rho in zip(shares, table))}
    return {"dense": [dense["metric"], dense["ci95"]], "rows": table,
            "finetune": saved["settings"].get("finetune", 0),
            **({"achieved": missed} if missed else {})}


def collect_whole_agent_sweep(run: Path) -> dict:
    """``collect_sweep`` of a sweep that prunes every component (a world model), so its
    table says so instead of "actor sparsity"."""
    return {**collect_sweep(run), "sparsity_header": "sparsity (all components)"}


def collect_world_model_rows(run: Path, methods: list[str], targets: list[float]) -> dict:
    """Per target and method of a world-model sweep: the held-out return with its CI, the
    search's env steps, the one-step latent rollout error and the largest closed-loop
    Jacobian spectral radius (the policy-prior loop), in the order given."""
    rows = _load(run / "sweep.json")["rows"]
    dense = next(r for r in rows if r["method"] == "dense")
    found = {(r["method"], r["target"]): r for r in rows}
    return {"dense": [dense["metric"], dense["ci95"]], "rows": [
        {"target": rho, "method": method, "metric": row["metric"], "ci95": row["ci95"],
         "search_env_steps": row["search_env_steps"], "rollout_error": row["rollout_error"][0],
         "jacobian_radius_max": row["jacobian_radius_max"]}
        for rho in targets for method in methods for row in [found[(method, rho)]]]}


def render_world_model_rows(study: dict) -> str:
    dense = study["dense"][0]
    several = len({row["target"] for row in study["rows"]}) > 1
    return _table([*(["sparsity"] if several else []), "method", "return (% dense)",
                   "search env steps", "one-step latent rollout error",
                   "closed-loop Jacobian radius (max)"], [
        (*([f"{row['target']:.0%}"] if several else []), row["method"],
         f"{row['metric']:.1f} +- {row['ci95']:.1f} ({_percent(row['metric'] / dense)})",
         f"{row['search_env_steps']:,}", f"{row['rollout_error']:.3f}",
         f"{row['jacobian_radius_max']:.2f}") for row in study["rows"]]) + (
        f"\n\n(dense: {dense:.1f} +- {study['dense'][1]:.1f} on the same episodes)")


def collect_component_cuts(run: Path, dense: str, methods: list[str], target: float) -> dict:
    """The share of each component's parameters a sweep's pruned agents removed at
    ``target`` (from their saved files); numbered components of one kind (Q0..Q4) count
    together."""
    import rlprune  # only collecting needs torch; rendering reads the JSON

    def sizes(agent) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for name, component in agent.components().items():
            kind = re.sub(r"\d+$", "", name)
            kinds[kind] = kinds.get(kind, 0) + sum(p.numel() for p in
                                                   component.module.parameters())
        return kinds

    before = sizes(rlprune.load_agent(dense))
    rows = {(r["method"], r["target"]): r for r in _load(run / "sweep.json")["rows"]}
    cuts = {}
    for method in methods:
        after = sizes(rlprune.load_agent(run / rows[(method, target)]["agent_file"]))
        cuts[method] = {kind: 1 - after[kind] / before[kind] for kind in before}
    return {"target": target, "cuts": cuts}


def render_component_cuts(study: dict) -> str:
    kinds = list(next(iter(study["cuts"].values())))
    return _table(["method", *kinds], [
        (method, *(_percent(cut[kind]) for kind in kinds))
        for method, cut in study["cuts"].items()])


def collect_bench_search(runs: list[Path]) -> dict:
    """Grid vs the gradient's budget-1 answer at each sparsity (``scripts/bench_search.py``
    JSON outputs, one per sparsity)."""
    keep = ("held_out_mean", "held_out_ci95", "env_steps", "evaluations")
    return {"rows": [{"sparsity": bench["sparsity"],
                      **{method: {key: bench[method][key] for key in keep}
                         for method in ("grid", "gradient")},
                      "difference": [bench["held_out_difference"],
                                     bench["held_out_difference_ci95"]],
                      "env_steps_ratio": bench["env_steps_ratio"]}
                     for bench in map(_load, runs)]}


def render_bench_search(study: dict) -> str:
    def held_out(result: dict) -> str:
        return f"{result['held_out_mean']:.1f} +- {result['held_out_ci95']:.1f}"
    return _table(["sparsity", "grid: return (candidates, env steps)",
                   "gradient, budget 1: return (env steps)", "gradient - grid (paired)",
                   "env steps, gradient / grid"], [
        (f"{row['sparsity']:.0%}",
         f"{held_out(row['grid'])} ({row['grid']['evaluations']}, "
         f"{row['grid']['env_steps']:,})",
         f"{held_out(row['gradient'])} ({row['gradient']['env_steps']:,})",
         f"{row['difference'][0]:+.1f} +- {row['difference'][1]:.1f}",
         f"{row['env_steps_ratio']:.1%}") for row in study["rows"]])


def collect_shipped_cards(checkpoints: Path) -> dict:
    """Each shipped checkpoint's card (the ``.json`` beside it), keyed by the file it describes."""
    return {next(p.name for p in checkpoints.glob(f"{card.stem}.*") if p.suffix in (".pt", ".zip")):
            _load(card) for card in sorted(checkpoints.glob("*.json"))}


def render_shipped_cards(cards: dict) -> str:
    return _table(["file", "what", "measured"], [
        (f"`{name}`", _shipped_what(card), _shipped_measured(card))
        for name, card in cards.items()])


def _shipped_what(card: dict) -> str:
    if card.get("kind") == "tdmpc2":
        return (f"TD-MPC2, `{card['size_preset']}` preset ({card['params_total'] / 1e6:.2f}M "
                f"params), `{card['task']}`, {card['env_steps_trained']:,} env steps")
    if "algorithm" in card:
        arch = " x ".join(map(str, card["net_arch"]))
        return (f"SB3 {card['algorithm']}, {arch}, `{card['task']}`, "
                f"{card['env_steps_trained']:,} env steps")
    return (f"MLP autoencoder ({card['params']:,} params) on {card['data']}, "
            f"{card['epochs']} epochs")


def _shipped_measured(card: dict) -> str:
    if "eval" not in card:
        return f"test PSNR {card['test_psnr']:.2f} dB"
    run = card["eval"]
    seeds = run["seeds"]
    how = (f"MPPI {card['planner']['iterations']} x {card['planner']['num_samples']} samples"
           if "planner" in card else "deterministic actions")
    text = (f"{run['mean_return']:.1f} +- {run['ci95']:.1f} mean return over {run['episodes']} "
            f"seeded episodes (seeds {seeds[0]}-{seeds[-1]}, {how}; returns "
            f"{min(run['returns']):.1f} to {max(run['returns']):.1f})")
    return text + (f"; re-measured {run['remeasured']}" if "remeasured" in run else "")


def _percent(share: float) -> str:
    """A share as a whole percentage, without a negative zero."""
    text = f"{share:.0%}"
    return "0%" if text == "-0%" else text


def render_sweep(study: dict) -> str:
    dense = study["dense"][0]
    methods = list(next(iter(study["rows"].values())))
    return _table([study.get("sparsity_header", "actor sparsity"), *methods], [
        (f"{float(rho):.0%}", *(f"{row[m]:.0f} ({_percent(row[m] / dense)})" for m in methods))
        for rho, row in study["rows"].items()]) + (
        f"\n\n(dense: {study['dense'][0]:.0f} +- {study['dense'][1]:.0f} on the same episodes"
        + _achieved(study.get("achieved", {})) + ")")


def _achieved(achieved: dict[str, list[float]]) -> str:
    """"; `a` and `b` rows remove 19/38% of the parameters" for methods off their targets."""
    by_shares: dict[str, list[str]] = {}
    for method, shares in achieved.items():
        by_shares.setdefault("/".join(f"{share * 100:.0f}" for share in shares), []).append(
            f"`{method}`")
    return "".join(f"; {' and '.join(methods)} rows remove {shares}% of the parameters"
                   for shares, methods in by_shares.items())


def render_finetuned_sweep(study: dict) -> str:
    """A sweep with ``--finetune``: per sparsity, the pruned agents' row, then the same
    agents after distillation (their ``METHOD+ft`` rows)."""
    dense = study["dense"][0]
    first = next(iter(study["rows"].values()))
    methods = [m for m in first if not m.endswith("+ft")]
    lines = []
    for rho, row in study["rows"].items():
        lines.append((f"{float(rho):.0%}", *(f"{row[m]:.0f} ({_percent(row[m] / dense)})"
                                             for m in methods)))
        lines.append((f"{float(rho):.0%}, + {study['finetune']} distillation steps",
                      *(f"{row[m + '+ft']:.0f} ({_percent(row[m + '+ft'] / dense)})"
                        for m in methods)))
    return _table([study.get("sparsity_header", "actor sparsity"), *methods], lines) + (
        f"\n\n(dense: {dense:.0f} +- {study['dense'][1]:.0f} on the same episodes)")


def render_robust_study(study: dict) -> str:
    """Held-out grid returns per agent (scripts/robust_study.py writes the source)."""
    dense_worst = study["agents"]["dense"]["worst"]
    return _table(["agent", "nominal", "mean over the grid", "worst on the grid",
                   "worst / dense worst"], [
        (name, f"{row['nominal']:.0f}", f"{row['mean']:.0f}", _worst(row),
         f"{row['worst'] / dense_worst:.0%}") for name, row in study["agents"].items()])


def collect_robust_runs(runs: list[Path], rho: float) -> dict:
    """Robust pruning at one sparsity across search sets and seeds: each run's (study.json of
    ``scripts/robust_study.py``) robust, fine-tuned actor against the dense worst case."""
    def worst(row: dict) -> dict:
        return {key: row[key] for key in ("worst", "worst_ci95", "worst_at", "kept")
                if key in row}
    studies = [_load(run / "study.json") for run in runs]
    if len({json.dumps(study["agents"]["dense"]) for study in studies}) != 1:
        raise ValueError("the runs' dense agents were not measured alike (held-out grid, "
                         "episodes): their worst cases cannot share a table")
    return {"sparsity": rho, "held_out_grid": studies[0]["held_out_grid"],
            "held_out_episodes": studies[0]["held_out_episodes"],
            "dense": worst(studies[0]["agents"]["dense"]),
            "runs": [{"search_systems": study["search_systems"], "seed": study["seed"],
                      "threads": study.get("threads"), "finetune": study.get("finetune"),
                      **{name: worst(study["agents"][f"{name} {rho:.0%}"])
                         for name in ("nominal cmaes", "robust cmaes", "robust cmaes+ft")}}
                     for study in studies]}


def render_robust_runs(study: dict) -> str:
    dense = study["dense"]["worst"]
    return _table(["search systems (worst of)", "seed", "torch threads", "distillation steps",
                   "nominal cmaes", "robust cmaes", "robust cmaes+ft (distilled actor kept?)",
                   "robust+ft / dense worst"], [
        (f"`{run['search_systems']}`", str(run["seed"]), str(run["threads"]),
         str(run["finetune"]), _worst(run["nominal cmaes"]),
         _worst(run["robust cmaes"]),
         f"{_worst(run['robust cmaes+ft'])} ({'yes' if run['robust cmaes+ft']['kept'] else 'no'})",
         f"{run['robust cmaes+ft']['worst'] / dense:.1%}") for run in study["runs"]]) + (
        f"\n\n(worst held-out grid point's mean return +- 95% CI, {study['held_out_episodes']} "
        f"episodes per point; dense: {_worst(study['dense'])})")


def _worst(row: dict) -> str:
    """The worst grid point's mean, with its CI where the study kept it."""
    ci = f" +- {row['worst_ci95']:.0f}" if "worst_ci95" in row else ""
    return f"{row['worst']:.0f}{ci}"


RENDERERS = {"deadline": render_deadline, "deadline_budgets": render_deadline_budgets,
             "bench_latency": render_bench_latency,
             "bench_latency_repeats": render_bench_latency_repeats,
             "backends": render_backends, "robust_study": render_robust_study,
             "robust_study_cartpole": render_robust_study,
             "robust_study_ft": render_robust_study,
             "robust_study_ft16": render_robust_study,
             "robust_runs_sac_80": render_robust_runs, "sac_sweep": render_sweep,
             "paper_sac_halfcheetah": render_sweep, "paper_sac_hopper": render_sweep,
             "paper_tdmpc2_cartpole": render_sweep,
             "paper_world_model_cartpole": render_world_model_rows,
             "finetune_sac_hopper": render_finetuned_sweep,
             "finetune_tdmpc2_cartpole": render_finetuned_sweep,
             "why_prune_cartpole": render_sweep,
             "methods_tdmpc2_cartpole": render_world_model_rows,
             "component_cuts_tdmpc2_cartpole": render_component_cuts,
             "bench_search": render_bench_search,
             "finetune_tdmpc2_cartpole_80_90": render_finetuned_sweep,
             "shipped_checkpoints": render_shipped_cards}
COLLECTORS = {
    "shipped_checkpoints": lambda: collect_shipped_cards(ROOT / "checkpoints"),
    "deadline": lambda: collect_deadline(ROOT / "results" / "deadline"),
    "deadline_budgets": lambda: collect_deadline_budgets(ROOT / "results" / "deadline"),
    "bench_latency": lambda: _load(ROOT / "results" / "bench_latency.json"),
    "bench_latency_repeats": lambda: collect_bench_latency_repeats(
        ROOT / "results" / "bench_latency_runs"),
    "backends": lambda: collect_backends(ROOT / "results" / "backends",
                                         ROOT / "results" / "deadline" / "eval-dense.json"),
    "sac_sweep": lambda: collect_sweep(ROOT / "results" / "sweep-sac"),
    "paper_sac_halfcheetah": lambda: collect_sweep(ROOT / "results" / "paper" / "sac-halfcheetah"),
    "paper_sac_hopper": lambda: collect_sweep(ROOT / "results" / "paper" / "sac-hopper"),
    "paper_tdmpc2_cartpole": lambda: collect_whole_agent_sweep(
        ROOT / "results" / "paper" / "cartpole-swingup"),
    "paper_world_model_cartpole": lambda: collect_world_model_rows(
        ROOT / "results" / "paper" / "cartpole-swingup",
        ["magnitude", "grid", "gradient", "cmaes"], [0.6, 0.8]),
    "finetune_sac_hopper": lambda: collect_sweep(ROOT / "results" / "sweep-hopper-ft"),
    "finetune_tdmpc2_cartpole": lambda: collect_whole_agent_sweep(
        ROOT / "results" / "sweep-cartpole-70"),
    "why_prune_cartpole": lambda: collect_whole_agent_sweep(
        ROOT / "results" / "why-prune-cartpole"),
    "methods_tdmpc2_cartpole": lambda: collect_world_model_rows(
        ROOT / "results" / "sweep-cartpole-50",
        ["magnitude", "random", "activation", "gradient", "grid", "cmaes"], [0.5]),
    "component_cuts_tdmpc2_cartpole": lambda: collect_component_cuts(
        ROOT / "results" / "sweep-cartpole-50", "cartpole-swingup",
        ["magnitude", "activation", "gradient", "grid", "cmaes"], 0.5),
    "bench_search": lambda: collect_bench_search(
        [ROOT / "results" / f"bench-search-{rho}.json" for rho in (50, 70)]),
    "finetune_tdmpc2_cartpole_80_90": lambda: collect_whole_agent_sweep(
        ROOT / "results" / "sweep-cartpole-80-90"),
    "robust_runs_sac_80": lambda: collect_robust_runs(
        [ROOT / "results" / f"{run}{steps}{threads}" for steps in ("", "-ft20k")
         for threads in ("", "-t2")
         for run in ("robust-ft32", "robust-vertices", "robust-wide", "robust-wide-seed1",
                     "robust-wide-seed2")], 0.8),
}
"""Sources rebuilt from run folders by ``collect`` (robust_study*.json are written by
scripts/robust_study.py --readme)."""


def _table(header: list[str], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def rendered(readme: str) -> str:
    """The README with every generated table rebuilt from its source file."""
    def rebuild(match: re.Match) -> str:
        name = match.group(1)
        table = RENDERERS[name](_load(SOURCES / f"{name}.json"))
        return f"<!-- table:{name} -->\n{table}\n<!-- /table -->"

    # an empty placeholder (a new table) is filled too, and ends at its own marker
    return re.sub(r"<!-- table:(\w+) -->\n(?:.*?\n)??<!-- /table -->", rebuild, readme,
                  flags=re.DOTALL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", nargs="?", choices=["collect"], help="collect sources")
    parser.add_argument("names", nargs="*", help="sources to collect (default: all)")
    parser.add_argument("--check", action="store_true", help="fail if the README differs")
    args = parser.parse_args()
    if args.action == "collect":
        SOURCES.mkdir(parents=True, exist_ok=True)
        for name in args.names or COLLECTORS:
            (SOURCES / f"{name}.json").write_text(json.dumps(COLLECTORS[name](), indent=1))
        return
    readme = README.read_text()
    fresh = rendered(readme)
    if args.check:
        if fresh != readme:
            sys.exit("README tables differ from results/readme/: run "
                     "python scripts/readme_numbers.py")
        return
    README.write_text(fresh)


if __name__ == "__main__":
    main()
