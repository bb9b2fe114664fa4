"""Time to first token and total time of a language-model report on a real clip (not a test).

    python -m bench.report_speed [--video tests/fixtures/short_hamilton_clip.mp4] [--budget 30] [--out DIR]

Analyses the clip into a temporary database (or reuses --db/--lecture), writes the rules report
(the reference, measured in the same run) and the local model's report, and prints one JSON
line: model, load seconds, time to first token, total seconds, tokens, the rules writer's
seconds and the ratio LM / rules. With --out both reports are saved as rules.md and lm.md.
The CPU may be shared: compare figures of one run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from core.llm import load_local_lm
from core.report import ReportConfig, build_facts, generate
from core.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default="tests/fixtures/short_hamilton_clip.mp4")
    ap.add_argument("--db", help="an existing database (with --lecture) instead of analysing --video")
    ap.add_argument("--lecture", type=int)
    ap.add_argument("--budget", type=float, default=30.0, help="the model writer's time budget, seconds")
    ap.add_argument("--out", help="folder for rules.md and lm.md")
    args = ap.parse_args()
    if args.db:
        store, lecture_id = Store(args.db), int(args.lecture)
    else:
        from core.pipeline import analyze
        from core.settings import Settings

        store = Store(Path(tempfile.mkdtemp()) / "bench.duckdb")
        lecture_id = analyze(args.video, store, Settings()).lecture_id
    facts = build_facts(store, lecture_id)
    rules = generate(facts, "rules")
    config = ReportConfig.from_env(budget_s=args.budget)
    t0 = time.monotonic()
    load_local_lm(str(config.local_model_path()))
    load_s = time.monotonic() - t0
    lm = generate(facts, "local", config=config)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rules.md").write_text(rules.text)
        (out / "lm.md").write_text(lm.text)
    print(json.dumps({
        "model": lm.model, "load_s": round(load_s, 2), "ttft_s": lm.first_token_s and round(lm.first_token_s, 2),
        "total_s": round(lm.seconds, 2), "tokens": lm.tokens, "rules_s": round(rules.seconds, 4),
        "ratio_lm_to_rules": round(lm.seconds / max(rules.seconds, 1e-6), 1), "notes": lm.notes,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
