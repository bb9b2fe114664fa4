"""Command line: `python -m core analyze VIDEO [--db FILE] [--out DIR] [--fps N]`,
`python -m core batch SOURCE... --out DIR [--ray ADDRESS] [--workers N] [--fps N]`, `roster`, `report`.

Progress goes to stderr; the last stdout line is one JSON object. Every failure exits with
status 2 and one line on stderr naming the file and the problem (no traceback; set
CLASSLENS_DEBUG=1 to see it). Settings, paths and output folders are checked before anything is
written, and commands that only read (report, roster list / remove) never create a database.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from core.errors import ClassLensError
from core.settings import Settings, db_path

log = logging.getLogger("core.cli")


def _out_folder(out: str) -> Path:
    """`--out` of analyze: a folder (created at the end); refused now if it cannot be one."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ClassLensError(f"--out {out}: is a file, not a folder for the CSV files.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ClassLensError(f"--out {out}: {parent} is a file, not a folder.")
            break
    return path


def _out_file(out: str) -> Path:
    """`--out` of report: a file whose folder must exist (checked before the report is made)."""
    path = Path(out)
    if path.is_dir():
        raise ClassLensError(f"--out {out}: is a folder; give a file name such as {path / 'report.md'}.")
    if not path.parent.is_dir():
        raise ClassLensError(f"--out {out}: the folder {path.parent} does not exist.")
    return path


def _analyze(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.exports import write_csvs
    from core.pipeline import analyze
    from core.store import Store

    settings = Settings.from_env(
        fps=args.fps, min_face=args.min_face, attention_only=True if args.attention_only else None
    )
    out_dir = _out_folder(args.out) if args.out else None
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
    if out_dir is not None:
        obs, stu = write_csvs(store, result.lecture_id, out_dir)
        out["observations_csv"], out["students_csv"] = str(obs), str(stu)
    print(json.dumps(out))
    return 0


def _batch(args: argparse.Namespace) -> int:
    from core.batch import run_batch
    from core.privacy import load_preferences

    # The archive's own privacy settings (DIR/archive.settings.json, as the app saves them)
    # apply to batch runs as they do to the app's analyses.
    local = args.out.removeprefix("file://")
    prefs = load_preferences(Path(local) / "archive.duckdb") if "://" not in local else None
    attention_only = True if prefs is not None and prefs.attention_only else None
    settings = Settings.from_env(fps=args.fps, attention_only=attention_only)
    if args.workers is not None and args.workers < 1:
        raise ClassLensError("--workers must be at least 1.")
    summary = run_batch(
        args.sources, args.out, settings=settings, ray_address=args.ray, workers=args.workers,
        retention_days=prefs.retention_days if prefs is not None else 0,
    )  # fmt: skip
    print(json.dumps(summary.as_json()))
    return 0


def _roster(args: argparse.Namespace) -> int:
    from core.roster import enrol_files
    from core.store import Store

    store = Store(args.db or db_path(), create=args.roster_command == "add")
    if args.roster_command == "add":
        zips = [p for p in args.images if p.lower().endswith(".zip")]
        photos = [p for p in args.images if not p.lower().endswith(".zip")]
        added = enrol_files(store, args.name, photos, zips)  # all or nothing
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

    out = _out_file(args.out) if args.out else None
    store = Store(args.db or db_path(), create=False)
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
    if out is not None:
        out.write_text(report.text, encoding="utf-8")
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

    b = sub.add_parser("batch", help="analyse many lectures on Ray into Parquet + DIR/archive.duckdb")
    b.add_argument("sources", nargs="+", metavar="SOURCE", help="video files, folders (recursive) or .txt lists")
    b.add_argument("--out", required=True, metavar="DIR", help="output folder or pyarrow filesystem URI (s3://…)")
    b.add_argument("--ray", metavar="ADDRESS", help="Ray cluster (auto, ray://host:10001); default: a local one")
    b.add_argument("--workers", type=int, metavar="N", help="worker actors (default: one per CPU)")
    b.add_argument("--fps", type=float, help="frames sampled per second (default 1)")
    b.set_defaults(func=_batch)

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
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    except OSError as exc:  # a file or folder the system refused
        if os.environ.get("CLASSLENS_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}.")
    except Exception as exc:  # a bug: still one line; CLASSLENS_DEBUG=1 shows the traceback
        if os.environ.get("CLASSLENS_DEBUG"):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (run with CLASSLENS_DEBUG=1 for details).")


def _fail(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
