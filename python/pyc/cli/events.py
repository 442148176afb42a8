"""pyc events (system events): the journal's events as docker prints them, following it for as
long as docker would (pyc.Engine.events)."""

from __future__ import annotations

from pyc.cli.spec import Command, Flag


def events(since: str | None, until: str | None, filter: list[str], format: str | None) -> None:
    """docker's line (`<time> <type> <action> <id> (<attr>=<value>, ...)`, the time local, to
    the nanosecond), or --format: json, or a Go template over docker's message."""
    import json
    import sys

    from pyc.cli.template import GoStruct, render
    from pyc.engine import Engine
    from pyc.inspect import event_document
    from pyc.times import rfc3339_nano

    for e in Engine().events(since, until, filter):
        if format is None:
            attrs = ", ".join(f"{k}={v}" for k, v in sorted(e.attributes.items()))
            line = f"{rfc3339_nano(e.time_nano)} {e.type} {e.action} {e.id}" + (f" ({attrs})" if attrs else "")
        elif format == "json":
            line = json.dumps(event_document(e))
        else:
            doc = event_document(e)
            # docker's template sees the Go struct: .ID, .Status, .Time, ...; {{json .}} its JSON.
            fields = {"Status": doc.get("status", ""), "ID": doc.get("id", ""), "From": doc.get("from", ""), "Type": e.type, "Action": e.action, "Actor": doc["Actor"]}
            line = render(format, GoStruct(fields | {"Scope": e.scope, "Time": doc["time"], "TimeNano": e.time_nano}, doc))
        print(line)
        sys.stdout.flush()


COMMANDS = [
    Command(
        ("system", "events"),
        "Show what happens to containers and images (from now on; --since: kept ones too; --until: up to a time).",
        events,
        flags=(
            Flag(("--since",), "since", help="From this time (RFC 3339, a Unix time, or a duration ago like 10m)."),
            Flag(("--until",), "until", help="Up to this time (the same forms); without it, follow for ever."),
            Flag(("-f", "--filter"), "filter", list, "container=, image=, event=, type=, label=KEY[=VALUE] (repeatable)."),
            Flag(("--format",), "format", help="json, or a Go template such as '{{.Action}} {{.Actor.ID}}'."),
        ),
        aliases=(("events",),),
    ),
]
