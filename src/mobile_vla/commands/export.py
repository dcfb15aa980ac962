"""`mobile-vla export`: a checkpoint as ONNX graphs for ONNX Runtime (and TensorRT) deployment."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint for deployment (ONNX graphs + processor + manifest)")
    p.add_argument("--checkpoint", required=True, help="training checkpoint directory")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format")
    p.add_argument("--out", required=True, help="export directory (eval-sim and serve take it as --checkpoint)")
    p.add_argument("--quantize", choices=("int8",), default=None,
                   help="also write dynamically quantised int8 graphs (select them with MOBILE_VLA_ONNX_VARIANT=int8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mobile_vla.cli import emit
    from mobile_vla.policy.onnx_export import export_onnx

    manifest = export_onnx(args.checkpoint, args.out, args.quantize)
    summary = {"out": args.out, "format": args.format, "variants": manifest["variants"],
               "window_size": manifest["window_size"], "chunk_size": manifest["chunk_size"]}
    emit(summary, args.json, f"wrote {', '.join(manifest['variants'])} graphs to {args.out}")
    return 0
