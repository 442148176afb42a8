"""Image verbs: images (image ls), tag, rmi (image rm), image inspect, image bootstrap."""

from __future__ import annotations

from pyc.cli.spec import Arg, Command, Flag


def images(quiet: bool) -> None:
    from pyc.cli.output import ago, size, table
    from pyc.engine import Engine

    rows = []
    for img in Engine().images.all():
        for ref in img.refs or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            rows.append([repo, tag, img.id[7:19], ago(img.config.get("created")) or "N/A", size(img.size)])
    if quiet:
        for image_id in dict.fromkeys(r[2] for r in rows):
            print(image_id)
    else:
        print(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows))


def tag(source: str, target: str) -> None:
    from pyc.engine import Engine

    Engine().tag(source, target)


def rmi(images: list[str], force: bool) -> None:
    from pyc.engine import Engine

    engine = Engine()
    for ref in images:
        print("\n".join(engine.remove_image(ref, force)))


def inspect(images: list[str]) -> None:
    import json
    import sys

    from pyc.engine import Engine

    engine = Engine()
    out = []
    for ref in images:
        img = engine.image(ref)
        out.append(
            {
                "Id": img.id,
                "RepoTags": img.refs,
                "ManifestDigest": img.manifest_digest,
                "Created": img.config.get("created"),
                "Architecture": img.config.get("architecture"),
                "Os": img.config.get("os"),
                "Config": img.run_config,
                "RootFS": {"Type": "layers", "Layers": img.diff_ids},
                "Size": img.size,
                "History": img.config.get("history", []),
            }
        )
    json.dump(out, sys.stdout, indent=4)
    print()


def bootstrap(name: str) -> None:
    from pyc.engine import Engine

    img = Engine().bootstrap(name)
    print(f"{img.refs[0] if img.refs else name}: {img.id}")


COMMANDS = [
    Command(("image", "ls"), "List images.", images, flags=(Flag(("-q", "--quiet"), "quiet", bool, "Only show image IDs."),), aliases=(("images",), ("image", "list"))),
    Command(("image", "tag"), "Give an image another name.", tag, (Arg("source", "SOURCE_IMAGE"), Arg("target", "TARGET_IMAGE")), aliases=(("tag",),)),
    Command(
        ("image", "rm"),
        "Remove images.",
        rmi,
        (Arg("images", "IMAGE", many=True),),
        (Flag(("-f", "--force"), "force", bool, "Remove it even if containers use it or it has several names."),),
        aliases=(("rmi",), ("image", "remove")),
    ),
    Command(("image", "inspect"), "Show images as JSON.", inspect, (Arg("images", "IMAGE", many=True),)),
    Command(("image", "bootstrap"), "Make a built-in image (busybox, debian) from this machine's Debian packages.", bootstrap, (Arg("name", "NAME", "busybox or debian."),)),
]
