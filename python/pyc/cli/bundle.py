"""`pyc bundle inspect`: what a delta bundle (pyc save --delta-from) rebuilds, needs and carries."""

from __future__ import annotations

import os
import sys

from pyc.cli.spec import Arg, Command, Flag
from pyc.errors import InvalidArgument


def inspect(file: str, format: str | None) -> int:
    from pyc.cli.output import size, table
    from pyc.engine import Engine

    if file == "-" and sys.stdin.isatty():
        raise InvalidArgument("no input: give a bundle file, or pipe one to stdin")
    content = Engine().inspect_bundle(sys.stdin.fileno() if file == "-" else os.path.expanduser(file))
    if format == "json":
        import json

        print(json.dumps(content.to_dict(), indent=2))
        return 0
    if format is not None:
        raise InvalidArgument(f"unknown format {format!r}: the only one is json")
    print(f"Bundle:    {content.digest}, {size(content.size or 0)}")
    print(f"Requires:  {', '.join(content.requires)}")
    for img in content.images:
        print(f"Image:     {', '.join(img.names) or img.id} ({img.id[7:19]}, manifest {img.manifest_digest[7:19]})")
        rows = [[layer.diff_id[7:19], size(layer.size), "(the old image has it)" if layer.carried is None else size(layer.carried)] for layer in img.layers]
        print("  " + table(["LAYER", "SIZE", "CARRIED"], rows).replace("\n", "\n  "))
    return 0


COMMANDS = [
    Command(
        ("bundle", "inspect"),
        "Show what a delta bundle rebuilds, needs and carries (its digest checked).",
        inspect,
        (Arg("file", "FILE", "A bundle written by pyc save --delta-from; - for stdin."),),
        (Flag(("--format",), "format", help="json: the whole content as JSON."),),
    ),
]
