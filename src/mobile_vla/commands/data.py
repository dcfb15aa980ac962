"""`mobile-vla data`: work with episode files (`data inspect`, `data export`, `data import`)."""

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

    export = data_sub.add_parser("export", help="write episodes as a dataset in another format "
                                 "(e.g. a LeRobotDataset v3.0 directory)")
    export.add_argument("paths", nargs="+", metavar="PATH", help="episode files or folders, any registered format")
    export.add_argument("--format", required=True, help="the dataset format to write, e.g. lerobot")
    export.add_argument("--out", required=True, help="the dataset directory to create")
    export.add_argument("--fps", type=float, default=None,
                        help="frames per second recorded in the dataset (default 2.5: the simulator's rate, "
                             "and the 0.4 s each of the robot's key presses drives)")
    export.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    export.set_defaults(func=_export)

    imp = data_sub.add_parser("import", help="read a dataset in another format back into HDF5 episode files")
    imp.add_argument("path", help="the dataset directory, e.g. a LeRobotDataset v3.0 directory")
    imp.add_argument("--format", required=True, help="the dataset's format, e.g. lerobot")
    imp.add_argument("--out", required=True, help="folder for the episode .h5 files")
    imp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    imp.set_defaults(func=_import)


def _help(parser) -> int:
    parser.print_help()
    return 0


def _inspect(args) -> int:
    from mobile_vla.cli import emit
    from mobile_vla.data.inspect import format_report, inspect_episodes

    report = inspect_episodes(args.path, check_images=args.check_images)
    emit(report, args.json, format_report(report))
    return 0 if not report["errors"] else 1


def _export(args) -> int:
    from mobile_vla.cli import emit
    from mobile_vla.data.formats import EPISODE_FORMATS, list_episodes, read_episode
    from mobile_vla.errors import MobileVLAError

    fmt = EPISODE_FORMATS.get(args.format)
    if fmt.export is None:
        raise MobileVLAError(f"format {args.format!r} has no dataset writer")
    locators = sorted({loc for p in args.paths for loc in list_episodes(p)})
    if not locators:
        raise MobileVLAError(f"no episodes in {args.paths}")
    kwargs = {} if args.fps is None else {"fps": args.fps}
    summary = fmt.export(locators, args.out, lambda p: read_episode(p, True), **kwargs)
    emit(summary, args.json, f"wrote {summary['episodes']} episodes ({summary['frames']} frames) to {args.out}")
    return 0


def _import(args) -> int:
    from pathlib import Path

    from mobile_vla.cli import emit
    from mobile_vla.data.formats import EPISODE_FORMATS, read_episode
    from mobile_vla.errors import MobileVLAError

    fmt = EPISODE_FORMATS.get(args.format)
    write = EPISODE_FORMATS.get("hdf5").write
    locators = fmt.find(Path(args.path))
    if not locators:
        raise MobileVLAError(f"{args.path}: no {args.format} episodes there")
    out = Path(args.out)
    written = [str(write(out / f"{loc.name}.h5", read_episode(loc, True))) for loc in locators]
    emit({"out": str(out), "episodes": len(written), "files": written}, args.json,
         f"wrote {len(written)} episode files to {out}")
    return 0
