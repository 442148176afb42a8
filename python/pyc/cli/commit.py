"""Change verbs: diff (what a container changed), commit (its changes as a new image),
history (the layers of an image and what made them). `commit` and `diff` also have a fast
parser that skips typer, whose import alone costs far more than a commit."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds at import; the fast path skips it
if TYPE_CHECKING:
    import typer

# flag -> its name in fast_commit's result
COMMIT_FLAGS = {"-c": "change", "--change": "change", "-m": "message", "--message": "message"}


def fast_commit(args: list[str]) -> tuple[str, str | None, list[str], str | None] | None:
    """(container, new ref, changes, message) from `commit` arguments, or None when the line
    needs the full parser (help, a flag it does not know, a missing or extra argument)."""
    changes: list[str] = []
    message: str | None = None
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            flag, eq, value = arg.partition("=") if arg.startswith("--") else (arg[:2], arg[2:], arg[2:])
            kind = COMMIT_FLAGS.get(flag)
            if kind is None:
                return None
            if not eq:
                i += 1
                if i >= len(args):
                    return None
                value = args[i]
            if kind == "change":
                changes.append(value)
            else:
                message = value
        else:
            positional.append(arg)
        i += 1
    if not 1 <= len(positional) <= 2:
        return None
    return positional[0], (positional[1] if len(positional) == 2 else None), changes, message


def commit_container(ref: str, new_ref: str | None, changes: list[str], message: str | None) -> int:
    from pyc import progress
    from pyc.engine import Engine
    from pyc.store.changes import parse_changes

    with progress.bars():
        img = Engine().commit(ref, new_ref, parse_changes(changes), message)
    print(img.id)
    return 0


def register(app: typer.Typer, image_app: typer.Typer, container_app: typer.Typer) -> None:
    import typer

    from pyc.cli.output import ago, size, table
    from pyc.engine import Engine

    def diff(ref: str = typer.Argument(..., help="The container.")) -> None:
        """Show what a container changed in its image: A added, C changed, D deleted."""
        for kind, path in Engine().diff(ref):
            print(f"{kind} {path}")

    def commit(
        ref: str = typer.Argument(..., help="The container."),
        new_ref: str | None = typer.Argument(None, help="NAME[:TAG] for the new image."),
        change: list[str] = typer.Option([], "-c", "--change", help="Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER."),
        message: str | None = typer.Option(None, "-m", "--message", help="Commit message."),
    ) -> None:
        """Make a new image from a stopped container's changes."""
        raise typer.Exit(commit_container(ref, new_ref, change, message))

    def history(
        ref: str = typer.Argument(..., help="The image."),
        no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not truncate the output."),
        quiet: bool = typer.Option(False, "-q", "--quiet", help="Only show image IDs."),
    ) -> None:
        """Show the history of an image."""
        rows = Engine().history(ref)
        if quiet:
            print("\n".join(r["id"] if no_trunc else r["id"][7:19] for r in rows if r["id"]))
            return
        out = []
        for r in rows:
            image_id = (r["id"] if no_trunc else r["id"][7:19]) if r["id"] else "<missing>"
            created_by = r["created_by"] if no_trunc or len(r["created_by"]) <= 45 else r["created_by"][:44] + "…"
            out.append([image_id, ago(r["created"]) or "N/A", created_by, size(r["size"] or 0), r["comment"]])
        print(table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], out))

    app.command("diff", help="Show what a container changed in its image.")(diff)
    container_app.command("diff", help="Show what a container changed in its image.")(diff)
    app.command("commit", help="Make a new image from a container's changes.")(commit)
    container_app.command("commit", help="Make a new image from a container's changes.")(commit)
    app.command("history", help="Show the history of an image.")(history)
    image_app.command("history", help="Show the history of an image.")(history)
