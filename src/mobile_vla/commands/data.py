"""`mobile-vla data`: work with episode files (`data inspect PATH [--json]`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("data", help="inspect and validate episode files")
    data_sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _help(p))

    inspect = data_sub.add_parser(
        "inspect",
        help="validate episodes and summarise them (exit 0 when every file is valid, 1 otherwise)",
    )
    inspect.add_argument("path", help="an episode .h5 file or a folder of them (searched recursively)")
    inspect.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    inspect.add_argument(
        "--check-images", action="store_true", help="also decode every frame (slow for 720p data)"
    )
    inspect.set_defaults(func=_inspect)


def _help(parser) -> int:
    parser.print_help()
    return 0


def _inspect(args) -> int:
    from mobile_vla.cli import emit
    from mobile_vla.data.inspect import format_report, inspect_episodes

    report = inspect_episodes(args.path, check_images=args.check_images)
    emit(report, args.json, format_report(report))
    return 0 if not report["errors"] else 1
