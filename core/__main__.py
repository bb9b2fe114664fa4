"""Command line: `python -m core analyze VIDEO [--db FILE] [--out DIR] [--fps N]`.

Progress goes to stderr; the last stdout line is one JSON object. Errors a user can cause exit
with status 2 and a one-line message (no traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from core.errors import ClassLensError
from core.settings import Settings, db_path


def _analyze(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.exports import write_csvs
    from core.pipeline import analyze
    from core.store import Store

    settings = Settings.from_env(
        fps=args.fps, min_face=args.min_face, attention_only=True if args.attention_only else None
    )
    store = Store(args.db or db_path())
    bars: list[tqdm] = []  # created at the first progress call, so a bad file prints no bar

    def progress(frac: float, msg: str) -> None:
        if not bars:
            bars.append(tqdm(total=100, unit="%", file=sys.stderr, desc=Path(args.video).name))
        bars[0].n = round(frac * 100)
        bars[0].set_postfix_str(msg)
        bars[0].refresh()

    try:
        result = analyze(args.video, store, settings, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    out = {
        "lecture_id": result.lecture_id,
        "status": result.status,
        "students": result.students,
        "observations": result.observations,
        "frames_sampled": result.frames_sampled,
        "seconds": round(result.seconds, 3),
        "reused": result.reused,
        "warnings": result.warnings,
        "db": str(store.path),
    }
    if args.out:
        obs, stu = write_csvs(store, result.lecture_id, args.out)
        out["observations_csv"], out["students_csv"] = str(obs), str(stu)
    print(json.dumps(out))
    return 0


def _roster(args: argparse.Namespace) -> int:
    from core.roster import enrol, enrol_zip
    from core.store import Store

    store = Store(args.db or db_path())
    if args.roster_command == "add":
        zips = [p for p in args.images if p.lower().endswith(".zip")]
        photos = [p for p in args.images if not p.lower().endswith(".zip")]
        added = {args.name: enrol(store, args.name, photos)} if photos else {}
        for z in zips:
            added.update(enrol_zip(store, z))
        print(json.dumps({"added": added}))
    elif args.roster_command == "list":
        df = store.roster_list()
        for r in df.itertuples():
            print(f"{r.name}\t{r.photos} photo(s)\tadded {r.added_at:%Y-%m-%d %H:%M}", file=sys.stderr)
        print(json.dumps({"roster": [{"name": r.name, "photos": int(r.photos)} for r in df.itertuples()]}))
    else:
        removed = store.roster_remove(args.name)
        if not removed:
            raise ClassLensError(f"{args.name} is not on the roster.")
        print(json.dumps({"removed": args.name, "embeddings": removed}))
    return 0


def _report(args: argparse.Namespace) -> int:
    from core.report import ReportConfig, apply_input, build_facts, generate, save_report
    from core.store import Store

    store = Store(args.db or db_path())
    config = ReportConfig.from_env(writer=args.writer)
    facts = build_facts(store, args.lecture, attention_only=True if args.attention_only else None)
    if args.input:
        facts = apply_input(facts, args.input)
    streaming = config.writer != "rules" and sys.stderr.isatty()
    report = generate(
        facts, config.writer, config=config, on_text=(lambda t: print(t, end="", file=sys.stderr, flush=True))
        if streaming else None,
    )  # fmt: skip
    save_report(store, args.lecture, report.writer, report.model, report.text)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        Path(args.out).write_text(report.text, encoding="utf-8")
    print(report.text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m core", description="ClassLens command line")
    sub = ap.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyse a lecture video (or a still image) into the database")
    a.add_argument("video", help="video file (mp4/mov/mkv/webm/avi) or image")
    a.add_argument("--db", help="DuckDB file (default $CLASSLENS_DB or data/classlens.duckdb)")
    a.add_argument("--out", help="folder for observations.csv and students.csv")
    a.add_argument("--fps", type=float, help="moments sampled per second (default 1)")
    a.add_argument("--min-face", type=int, help="smallest face side in pixels (default 16)")
    a.add_argument("--attention-only", action="store_true", help="switch emotion inference off")
    a.set_defaults(func=_analyze)

    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", help="DuckDB file (default $CLASSLENS_DB or data/classlens.duckdb)")
    r = sub.add_parser("roster", help="enrol, list and remove named students (only face embeddings are kept)")
    rsub = r.add_subparsers(dest="roster_command", required=True)
    ra = rsub.add_parser(
        "add", parents=[db], help="enrol NAME with 1-5 photos (a .zip of name/*.jpg enrols each folder)"
    )
    ra.add_argument("name")
    ra.add_argument("images", nargs="+")
    rsub.add_parser("list", parents=[db], help="enrolled names")
    rr = rsub.add_parser("remove", parents=[db], help="remove NAME and all their embeddings")
    rr.add_argument("name")
    r.set_defaults(func=_roster)

    rep = sub.add_parser("report", parents=[db], help="write a report with recommendations for a lecture")
    rep.add_argument("--lecture", type=int, required=True, help="lecture id (see the analyze output)")
    rep.add_argument("--writer", choices=("rules", "local", "openai"), help="default $CLASSLENS_REPORT_WRITER or rules")
    rep.add_argument("--out", help="also write the report to this file (.txt or .md)")
    rep.add_argument(
        "--input", help="an edited report input string (Name: presence=0.95; engagement=0.72; happy=0.80 (5.00min))"
    )
    rep.add_argument("--attention-only", action="store_true", help="leave every emotion out")
    rep.set_defaults(func=_report)
    return ap


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ClassLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
