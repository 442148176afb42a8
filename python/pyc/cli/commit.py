"""Change verbs: diff (what a container changed), commit (its changes as a new image), history
(the layers of an image and what made them)."""

from __future__ import annotations

from pyc.cli.spec import Arg, Command, Flag


def diff(container: str) -> None:
    from pyc.engine import Engine

    for kind, path in Engine().diff(container):
        print(f"{kind} {path}")


def commit(container: str, new_ref: str | None, change: list[str], message: str | None) -> None:
    from pyc import progress
    from pyc.engine import Engine
    from pyc.store.changes import parse_changes

    with progress.bars():
        img = Engine().commit(container, new_ref, parse_changes(change), message)
    print(img.id)


def history(image: str, no_trunc: bool, quiet: bool) -> None:
    from pyc.cli.output import ago, size, table
    from pyc.engine import Engine

    rows = Engine().history(image)
    if quiet:
        print("\n".join(r.id if no_trunc else r.id[7:19] for r in rows if r.id))
        return
    out = []
    for r in rows:
        image_id = (r.id if no_trunc else r.id[7:19]) if r.id else "<missing>"
        created_by = r.created_by if no_trunc or len(r.created_by) <= 45 else r.created_by[:44] + "…"
        out.append([image_id, ago(r.created) or "N/A", created_by, size(r.size or 0), r.comment])
    print(table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], out))


CHANGE = Flag(("-c", "--change"), "change", list, "Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER.")

COMMANDS = [
    Command(("container", "diff"), "Show what a container changed in its image: A added, C changed, D deleted.", diff, (Arg("container", "CONTAINER"),), aliases=(("diff",),)),
    Command(
        ("container", "commit"),
        "Make a new image from a stopped container's changes.",
        commit,
        (Arg("container", "CONTAINER"), Arg("new_ref", "NAME[:TAG]", "Name of the new image.", required=False)),
        (CHANGE, Flag(("-m", "--message"), "message", help="Commit message.")),
        aliases=(("commit",),),
    ),
    Command(
        ("image", "history"),
        "Show the history of an image.",
        history,
        (Arg("image", "IMAGE"),),
        (Flag(("--no-trunc",), "no_trunc", bool, "Do not truncate the output."), Flag(("-q", "--quiet"), "quiet", bool, "Only show image IDs.")),
        aliases=(("history",),),
    ),
]
