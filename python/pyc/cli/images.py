"""Image verbs: images (image ls), tag, rmi (image rm), image inspect, image bootstrap."""

from __future__ import annotations

from pyc.cli.containers import FORMAT
from pyc.cli.spec import Arg, Command, Flag


def _created_at(created: object) -> str:
    """docker's CreatedAt: Go's time.String() of the local time, `2026-05-30 10:00:00 +0000 UTC`."""
    import time

    from pyc.cli.output import utc_seconds

    seconds = utc_seconds(str(created)) if created else None
    if seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(seconds))


def images(quiet: bool, all: bool, filter: list[str], format: str | None, digests: bool, no_trunc: bool) -> None:
    """One row per name of each image (<none> for an image without one), docker's columns and
    --format fields (ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size, ...)."""
    from pyc.cli.output import ago, image_rows, size, table
    from pyc.engine import Engine

    rows = []
    for img in Engine().list_images(filter):
        image_id = img.id if no_trunc else img.id[7:19]
        created = img.config.get("created")
        for repo, tag, digest in image_rows(img.refs, img.digests):
            shown = size(img.size)
            rows.append(
                {
                    "Containers": "N/A",
                    "CreatedAt": _created_at(created),
                    "CreatedSince": ago(str(created) if created else None) or "N/A",
                    "Digest": digest,
                    "ID": image_id,
                    "Repository": repo,
                    "SharedSize": "N/A",
                    "Size": shown,
                    "Tag": tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": shown,
                }
            )
    if quiet:
        for shown_id in dict.fromkeys(r["ID"] for r in rows):
            print(shown_id)
        return
    if format is not None:
        from pyc.cli.template import print_each

        print_each(rows, format)
        return
    columns = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"]
    keys = ["Repository", "Tag", *(["Digest"] if digests else []), "ID", "CreatedSince", "Size"]
    print(table(columns, [[r[k] for k in keys] for r in rows]))


def tag(source: str, target: str) -> None:
    from pyc.engine import Engine

    Engine().tag(source, target)


def rmi(images: list[str], force: bool) -> None:
    from pyc.engine import Engine

    engine = Engine()
    for ref in images:
        print("\n".join(engine.remove_image(ref, force)))


def inspect(images: list[str], format: str | None) -> None:
    from pyc.cli.containers import show
    from pyc.engine import Engine
    from pyc.inspect import image_document

    engine = Engine()
    show([image_document(engine.image(ref)) for ref in images], format)


def bootstrap(name: str) -> None:
    from pyc.engine import Engine

    img = Engine().bootstrap(name)
    print(f"{img.refs[0] if img.refs else name}: {img.id}")


COMMANDS = [
    Command(
        ("image", "ls"),
        "List images.",
        images,
        flags=(
            Flag(("-q", "--quiet"), "quiet", bool, "Only show image IDs."),
            Flag(("-a", "--all"), "all", bool, "Show all images (pyc keeps no intermediate ones: the same list)."),
            Flag(("-f", "--filter"), "filter", list, "dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE] (repeatable)."),
            Flag(("--format",), "format", help="json, or a Go template such as '{{.Repository}}:{{.Tag}}'."),
            Flag(("--digests",), "digests", bool, "Show the digests registries know the images by."),
            Flag(("--no-trunc",), "no_trunc", bool, "Show full image IDs."),
        ),
        aliases=(("images",), ("image", "list")),
    ),
    Command(("image", "tag"), "Give an image another name.", tag, (Arg("source", "SOURCE_IMAGE"), Arg("target", "TARGET_IMAGE")), aliases=(("tag",),)),
    Command(
        ("image", "rm"),
        "Remove images.",
        rmi,
        (Arg("images", "IMAGE", many=True),),
        (Flag(("-f", "--force"), "force", bool, "Remove it even if containers use it or it has several names."),),
        aliases=(("rmi",), ("image", "remove")),
    ),
    Command(("image", "inspect"), "Show images as JSON.", inspect, (Arg("images", "IMAGE", many=True),), (FORMAT,)),
    Command(("image", "bootstrap"), "Make a built-in image (busybox, debian) from this machine's Debian packages.", bootstrap, (Arg("name", "NAME", "busybox or debian."),)),
]
