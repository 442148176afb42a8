"""Image verbs: images (image ls), tag, rmi (image rm), image inspect, image bootstrap."""

from __future__ import annotations

from pyc.cli.containers import FORMAT
from pyc.cli.spec import Arg, Command, Flag


def images(quiet: bool, digests: bool) -> None:
    from pyc.cli.output import ago, image_rows, size, table
    from pyc.engine import Engine

    rows = []
    for img in Engine().list_images():
        for repo, tag, digest in image_rows(img.refs, img.digests):
            rows.append([repo, tag, *([digest] if digests else []), img.id[7:19], ago(img.config.get("created")) or "N/A", size(img.size)])
    if quiet:
        for image_id in dict.fromkeys(r[-3] for r in rows):
            print(image_id)
    else:
        print(table(["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"], rows))


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
        flags=(Flag(("-q", "--quiet"), "quiet", bool, "Only show image IDs."), Flag(("--digests",), "digests", bool, "Show the digests registries know the images by.")),
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
