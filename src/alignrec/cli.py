"""The ``alignrec`` command: one entry point for every stage of the pipeline.

User mistakes (:class:`AlignrecError`) print one line naming the file, field
and fix, and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from alignrec import __version__
from alignrec.catalog import model_names
from alignrec.config import DataConfig, EvalConfig, RunConfig, load_config, parse_section
from alignrec.errors import AlignrecError, ConfigError

EXIT_USER_ERROR = 2


def _mapping(text: str, flag: str) -> dict[str, str]:
    """``user=userId,item=movieId`` -> dict."""
    pairs = [part for part in text.split(",") if part.strip()]
    if not all("=" in part for part in pairs):
        raise ConfigError(f"{flag} {text!r}: write it as name=column,name=column")
    return {k.strip(): v.strip() for k, v in (part.split("=", 1) for part in pairs)}


DEFAULT_KS = ",".join(str(k) for k in EvalConfig().ks)
INSPECT_K = 10


def _ks(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise ConfigError(f"--ks {text!r}: give cut-offs as integers, e.g. {DEFAULT_KS}") from None
    if not ks or ks[0] < 1:
        raise ConfigError(f"--ks {text!r}: cut-offs must be positive integers")
    return ks


def _warn(message: str) -> None:
    Console(stderr=True).print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def cmd_data_prepare(args: argparse.Namespace) -> None:
    from alignrec.data.prepare import prepare_dataset
    from alignrec.data.stats import dataset_stats, format_stats

    if args.path is None and args.format is not None:
        raise ConfigError("--format needs --path: the file or folder of your dataset")
    if args.path is not None and args.format is None:
        raise ConfigError("--path needs --format recbole|lcrec|csv")
    config = parse_section(DataConfig, {
        "dataset": args.dataset if args.path is None else None,
        "format": args.format,
        "path": args.path,
        "min_user_interactions": args.min_user_interactions,
        "min_item_interactions": args.min_item_interactions,
        "min_rating": args.min_rating,
        "max_history": args.max_history,
        "separator": args.separator,
        "columns": _mapping(args.columns, "--columns") if args.columns else {},
        "item_path": args.items,
        "item_columns": _mapping(args.item_columns, "--item-columns") if args.item_columns else {},
        "encoding": args.encoding,
    }, "data")
    started = time.perf_counter()
    dataset = prepare_dataset(config, args.out)
    print(format_stats(dataset_stats(dataset)))
    print(f"prepared in {time.perf_counter() - started:.1f} s -> {args.out}")


def cmd_data_stats(args: argparse.Namespace) -> None:
    from alignrec.data.dataset import SequenceDataset
    from alignrec.data.stats import dataset_stats, format_stats

    stats = dataset_stats(SequenceDataset.load(args.dir))
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from alignrec.data.dataset import SequenceDataset
    from alignrec.eval.compare import print_comparison
    from alignrec.eval.evaluator import evaluate_rankings, write_evaluation
    from alignrec.eval.predictions import load_predictions
    from alignrec.io import read_json

    ks = _ks(args.ks or DEFAULT_KS)
    dataset = SequenceDataset.load(args.data)
    predictions = load_predictions(args.predictions, dataset)
    if predictions.warning:
        _warn(predictions.warning)
    rankings = predictions.rankings
    if args.ks:  # cut-offs asked for must be ones the lists can reach (the default ones are shown whatever)
        longest = max((len(r) for r in rankings.values()), default=0)
        if ks[-1] > dataset.num_items:
            raise ConfigError(f"--ks {args.ks!r}: {ks[-1]} is above the {dataset.num_items:,} items of dataset "
                              f"{dataset.name!r}; give cut-offs up to {dataset.num_items:,}")
        if ks[-1] > longest:
            raise ConfigError(f"--ks {args.ks!r}: the longest list in {args.predictions} has {longest} items, so "
                              f"@{ks[-1]} would only repeat @{longest}; give cut-offs up to {longest} or longer lists")
    model = args.model or Path(args.predictions).stem
    result = evaluate_rankings(dataset, rankings, args.split, model, EvalConfig(ks=ks, exclude_history=not args.no_exclude_history))
    settings = {"predictions": str(Path(args.predictions).resolve()), "ks": ks}
    write_evaluation(args.out, result, dataset, settings)
    row = read_json(Path(args.out) / "metrics.json")
    row["path"] = args.out
    print_comparison([row])


def cmd_train(args: argparse.Namespace) -> None:
    from alignrec.device import resolve_device
    from alignrec.eval.compare import collect_metrics, print_comparison
    from alignrec.pipeline import train_model

    config = load_config(args.config, args.set)
    resolve_device(config.device)  # a GPU asked for on a machine without one fails now, not after the data
    if train_model(args.model, config, args.data, args.out, args.tokens):  # {} on torchrun's other ranks
        print_comparison(collect_metrics([args.out]))


def cmd_compare(args: argparse.Namespace) -> None:
    from alignrec.eval.compare import collect_metrics, print_comparison

    rows = collect_metrics(args.runs)
    print_comparison(rows)
    if args.baseline is None:
        return
    from alignrec.data.dataset import SequenceDataset
    from alignrec.eval.paired import common_users, paired_markdown, paired_rows
    from alignrec.eval.subset import read_rankings
    from alignrec.rundir import RunDir

    data = Path(args.data) if args.data else RunDir(args.runs[0]).data
    dataset = SequenceDataset.load(data)
    rankings = read_rankings(dataset, [Path(row["path"]) for row in rows])
    if len(rankings) < len(rows):
        raise ConfigError("--baseline: two compared folders share a name; compare each model once")
    users = common_users(dataset, rankings)
    settings = EvalConfig(ks=[10, 20])
    print(f"Against {args.baseline} on the {len(users)} users every model ranked (paired sign-flip permutation "
          "test, 10,000 resamples, two-sided):")
    print(paired_markdown(paired_rows(dataset, rankings, args.baseline, users, settings), args.baseline))


def cmd_run(args: argparse.Namespace) -> None:
    from alignrec.device import resolve_device
    from alignrec.pipeline import run_pipeline

    config = load_config(args.config, args.set)
    resolve_device(config.device)  # a GPU asked for on a machine without one fails now, not after the data
    out = args.out or str(Path("runs") / config.name)
    summary = run_pipeline(config, out)
    print(f"run directory: {out} ({summary['wall_time_s']:.0f} s)")


def cmd_tokenize(args: argparse.Namespace) -> None:
    if args.tokenize_command == "inspect":
        from alignrec.tokenize.artifacts import load_artifact
        from alignrec.tokenize.inspect import format_inspection

        artifact = load_artifact(args.dir)
        others = len(artifact.codes) - 1
        if args.k is not None and not 1 <= args.k <= others:
            raise ConfigError(f"-k {args.k}: {args.dir} has {others + 1:,} items, so give 1 to {others:,} neighbours")
        print(format_inspection(artifact, args.item, args.k or min(INSPECT_K, others)))
        return
    if args.data is None or args.out is None:
        raise ConfigError("tokenize needs --data DIR (a prepared dataset) and --out TOK_DIR")
    from alignrec.pipeline import run_tokenize

    config = load_config(args.config, args.set)
    run_tokenize(args.data, args.sasrec, args.out, config)
    print(f"tokenizer output: {args.out}")


def _serve_config(run: str, overrides: list[str]) -> RunConfig:
    """The run's own config.yaml (if any) with ``--set`` overrides: serve.* settings live there."""
    saved = Path(run) / "config.yaml"
    return load_config(saved if saved.is_file() else None, overrides)


def _shortcuts(args: argparse.Namespace, **settings: str) -> list[str]:
    """Flags that are shortcuts for ``--set``: ``--k 20`` is ``--set serve.k=20``, checked the same way."""
    return [f"{key}={getattr(args, flag)}" for flag, key in settings.items() if getattr(args, flag) is not None]


def _store_url(args: argparse.Namespace) -> str:
    return args.store or f"sqlite:{Path(args.run) / 'store.sqlite'}"


def cmd_precompute(args: argparse.Namespace) -> None:
    from alignrec.data.dataset import SequenceDataset
    from alignrec.rundir import RunDir
    from alignrec.serve.precompute import precompute
    from alignrec.serve.store import open_store

    config = _serve_config(args.run, [*args.set, *_shortcuts(args, model="serve.model", k="serve.k",
                                                              keep="serve.keep")]).serve
    if args.k is not None:
        items = SequenceDataset.load(RunDir(args.run).data).num_items
        if args.k > items:
            raise ConfigError(f"--k {args.k}: the run's dataset has {items:,} items, so no list can hold more; "
                              f"give --k {items:,} or less")
    with open_store(_store_url(args)) as store:
        result = precompute(args.run, store, config, args.users, args.engine, args.ray_address, args.force)
        if result.skipped:
            print(f"snapshot {result.snapshot} is current and was made with these settings: nothing to do "
                  "(--force recomputes)")
            return
        rate = result.computed / result.wall_time_s if result.wall_time_s else 0.0
        print(f"published {result.snapshot} to {store.url}: {result.users:,} users "
              f"({result.computed:,} computed now{', resumed' if result.resumed else ''}, "
              f"{result.fallback:,} popularity fallback) in {result.wall_time_s:.1f} s ({rate:,.0f} users/s)")
        print(f"digest {result.digest}")
        if result.pruned:
            print(f"pruned {', '.join(result.pruned)}")


def cmd_snapshots(args: argparse.Namespace) -> None:
    from alignrec.serve.precompute import describe_snapshots
    from alignrec.serve.store import open_store

    with open_store(args.store, create=False) as store:
        if args.activate:
            store.activate(args.activate)
            print(f"current snapshot: {args.activate} (running servers switch on POST /v1/admin/reload)")
        rows = describe_snapshots(store)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print(f"{args.store}: no snapshots yet")
        return
    for row in rows:
        row["digest"] = row["digest"][:16]
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())


def cmd_serve(args: argparse.Namespace) -> None:
    from alignrec.serve.app import ServeState, serve
    from alignrec.serve.store import open_store

    config = _serve_config(args.run, [*args.set, *_shortcuts(args, workers="serve.workers")]).serve
    with open_store(_store_url(args)) as store:
        state = ServeState(args.run, store, config, model=args.model)
        workers = f", {config.workers} workers" if config.workers > 1 else ""
        print(f"serving {args.run} from {store.url} (snapshot {state.active.id}) on http://{args.host}:{args.port}"
              f"{workers} (API docs at /docs)", flush=True)
        serve(state, args.host, args.port)


def cmd_report(args: argparse.Namespace) -> None:
    from alignrec.report.build import write_report

    path, sections = write_report(args.run_dir, args.out)
    for section in sections:
        if section.skipped:
            print(f"skipped {section.title}: {section.skipped}")
    print(f"report: {path}")


def cmd_export(args: argparse.Namespace) -> None:
    from alignrec.export import export_run

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    for name, files in export_run(args.run_dir, args.out, models).items():
        print(f"{name}: {files[0].parent} ({', '.join(f.name for f in files)})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alignrec", description="LLM recommender aligned with a collaborative model."
    )
    parser.add_argument("--version", action="version", version=f"alignrec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="prepare and inspect datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    prepare = data_commands.add_parser("prepare", help="read, filter, re-index and save a dataset")
    source = prepare.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=["ml-100k", "ml-1m"], help="a built-in dataset")
    source.add_argument("--path", help="your dataset: a file or folder (with --format)")
    prepare.add_argument("--format", choices=["recbole", "lcrec", "csv"])
    prepare.add_argument("--out", required=True, help="folder for the prepared dataset")
    prepare.add_argument("--min-user-interactions", type=int, default=0, metavar="N",
                         help="k-core: drop users with fewer interactions (iterative; 0 = off)")
    prepare.add_argument("--min-item-interactions", type=int, default=0, metavar="N",
                         help="k-core: drop items with fewer interactions (iterative; 0 = off)")
    prepare.add_argument("--min-rating", type=float, default=None, help="drop interactions rated lower")
    prepare.add_argument("--max-history", type=int, default=0, metavar="N",
                         help="keep each user's last N interactions (0 = all)")
    prepare.add_argument("--columns", help="CSV: user=COL,item=COL[,timestamp=COL][,rating=COL]")
    prepare.add_argument("--separator", help="CSV: field separator (default: tab for .tsv, else comma)")
    prepare.add_argument("--items", help="CSV: an item table with text columns")
    prepare.add_argument("--item-columns", help="CSV: item=COL[,title=COL][,genres=COL][,description=COL]")
    prepare.add_argument("--encoding", default="utf-8",
                         help="text encoding of the files (default utf-8; e.g. latin-1, cp1252)")
    prepare.set_defaults(handler=cmd_data_prepare)
    stats = data_commands.add_parser("stats", help="describe a prepared dataset")
    stats.add_argument("dir")
    stats.add_argument("--json", action="store_true", help="print JSON instead of text")
    stats.set_defaults(handler=cmd_data_stats)

    evaluate = commands.add_parser("evaluate", help="score a JSON Lines file of ranked lists")
    evaluate.add_argument("--data", required=True, help="a prepared dataset")
    evaluate.add_argument("--predictions", required=True,
                          help='JSON Lines: {"user": "<id>", "items": ["<id>", ...]} best first')
    evaluate.add_argument("--out", required=True, help="run directory for metrics.json")
    evaluate.add_argument("--split", choices=["test", "valid"], default="test")
    evaluate.add_argument("--no-exclude-history", action="store_true",
                          help="keep items the user already has in the lists")
    evaluate.add_argument("--ks", help=f"cut-offs, at most the dataset's items and the lists' length "
                                       f"(default {DEFAULT_KS})")
    evaluate.add_argument("--model", help="model name in the table (default: the file's name)")
    evaluate.set_defaults(handler=cmd_evaluate)

    train = commands.add_parser("train", help="train and evaluate one model")
    train.add_argument("model", choices=model_names(standalone=True),
                       help="a model of the catalog (alignrec.catalog) that trains alone")
    train.add_argument("--tokens", help="llm: the tokenizer output folder (alignrec tokenize --out); "
                                        "made in --out when tokenize.features=text")
    train.add_argument("--data", required=True, help="a prepared dataset")
    train.add_argument("--out", required=True, help="run directory (resumes if it holds a checkpoint)")
    train.add_argument("--config", help="YAML config file or preset name")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting, e.g. --set sasrec.epochs=50 (repeatable)")
    train.set_defaults(handler=cmd_train)

    compare = commands.add_parser("compare", help="one table of the metrics of several runs")
    compare.add_argument("runs", nargs="+", help="run directories or metrics.json files")
    compare.add_argument("--baseline", metavar="MODEL",
                         help="test every model against this one on the same users: relative change and the "
                              "p-value of a paired sign-flip permutation test")
    compare.add_argument("--data", help="the prepared dataset the rankings are of (default: FIRST_RUN/data)")
    compare.set_defaults(handler=cmd_compare)

    tokenize = commands.add_parser(
        "tokenize", help="map items to code tokens aligned with the LLM (or inspect the result)")
    tokenize.add_argument("--data", help="a prepared dataset")
    tokenize.add_argument("--sasrec", help="a SASRec run folder with item_embeddings.npz (for cf / both)")
    tokenize.add_argument("--out", help="folder for the tokenizer output")
    tokenize.add_argument("--config", help="YAML config file or preset name")
    tokenize.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a setting, e.g. --set tokenize.quantizer=rqvae (repeatable)")
    tokenize.set_defaults(handler=cmd_tokenize, tokenize_command=None)
    tokenize_commands = tokenize.add_subparsers(dest="tokenize_command")
    inspect = tokenize_commands.add_parser("inspect", help="an item's codes and its nearest items in code space")
    inspect.add_argument("dir", help="a tokenizer output folder")
    inspect.add_argument("item", help="an original item id")
    inspect.add_argument("-k", type=int, help=f"how many neighbours (default {INSPECT_K})")

    precompute = commands.add_parser(
        "precompute", help="every user's top-K into a new store snapshot (resumable, published atomically)")
    precompute.add_argument("--run", required=True, help="a run directory (data/ and the trained model)")
    precompute.add_argument("--store", help="sqlite:PATH or redis://HOST:PORT/DB[?prefix=P] "
                                            "(default: sqlite:RUN/store.sqlite)")
    precompute.add_argument("--model", help="which recommender (default serve.model: best, the run's best on validation)")
    precompute.add_argument("--users", help="only these users: a file of original user ids, one a line")
    precompute.add_argument("--k", type=int, help="items kept per user (default serve.k: 50)")
    precompute.add_argument("--keep", type=int, help="published snapshots kept (default serve.keep: 3)")
    precompute.add_argument("--engine", choices=["local", "ray"], default="local")
    precompute.add_argument("--ray-address", help="join this Ray cluster (default: start a local one)")
    precompute.add_argument("--force", action="store_true",
                            help="recompute even if the current snapshot was made with the same settings")
    precompute.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override a setting, e.g. --set serve.batch_size=512 (repeatable)")
    precompute.set_defaults(handler=cmd_precompute)

    snapshots = commands.add_parser("snapshots", help="list a store's snapshots, or switch the current one")
    snapshots.add_argument("--store", required=True, help="sqlite:PATH or redis://HOST:PORT/DB[?prefix=P]")
    snapshots.add_argument("--activate", metavar="SNAPSHOT", help="make this published snapshot the current one")
    snapshots.add_argument("--json", action="store_true", help="print JSON instead of a table")
    snapshots.set_defaults(handler=cmd_snapshots)

    serve = commands.add_parser("serve", help="the recommendation service (HTTP, FastAPI + uvicorn)")
    serve.add_argument("--run", required=True, help="the run directory the snapshots were computed from")
    serve.add_argument("--store", help="as for precompute (default: sqlite:RUN/store.sqlite)")
    serve.add_argument("--model", help="the live model for POST /v1/recommendations "
                                       "(default: the snapshot's model)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, help="service processes sharing the port (shortcut for --set serve.workers=N)")
    serve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting, e.g. --set serve.live_timeout_s=0.5 (repeatable)")
    serve.set_defaults(handler=cmd_serve)

    report = commands.add_parser("report", help="RUN_DIR/report.html: the run's plots on one page")
    report.add_argument("run_dir", help="a run directory (alignrec run --out)")
    report.add_argument("--out", help="where to write the page (default RUN_DIR/report.html)")
    report.set_defaults(handler=cmd_report)

    export = commands.add_parser("export", help="a run's SASRec (safetensors) and LLM (a Hugging Face folder)")
    export.add_argument("run_dir", help="a run directory (alignrec run --out)")
    export.add_argument("--out", required=True, help="a new folder: one subfolder per exported model")
    export.add_argument("--models", help="comma-separated (default: every trained sasrec and llm)")
    export.set_defaults(handler=cmd_export)

    run = commands.add_parser("run", help="the whole pipeline from a config file")
    run.add_argument("--config", default="default", help="YAML file or preset name (default: default)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a setting, e.g. --set data.dataset=ml-1m (repeatable)")
    run.add_argument("--out", help="run directory (default: runs/<name>)")
    run.set_defaults(handler=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except AlignrecError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: finished stages and checkpoints are kept; run the same command to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
