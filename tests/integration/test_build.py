"""pyc build: a Dockerfile corpus built in a store of the module's own (busybox made on the first
FROM busybox): every instruction into the config or a layer, COPY from the context with its
rules, multi-stage builds, the cache (a second build runs no RUN step: each RUN leaves a time
stamp that a second run would change), reproducible images, and failures that leave nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import CGROUP_PARENT, PYC, cgroup_dirs, pyc
from tests.integration.conftest import insecure
from tests.integration.registries import Registry

pytestmark = [pytest.mark.root]

# A RUN step that leaves what no second run could leave again: a random UUID.
STAMP = "cat /proc/sys/kernel/random/uuid > /stamp-{0}"


class Store:
    """A pyc with a store of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "PYC_ROOT": str(root)}

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return pyc(*args, input=input, env={**self.env, **(env or {})}, timeout=timeout)

    def ok(self, *args: str, **kw: object) -> str:
        r = self(*args, **kw)  # type: ignore[arg-type]
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def build(self, ctx: Path, *flags: str, env: dict[str, str] | None = None) -> str:
        """The image ID of a quiet build."""
        out = self.ok("build", "-q", *flags, str(ctx), env=env)
        assert out.count("\n") == 1 and out.startswith("sha256:"), out
        return out.strip()

    def file(self, image: str, path: str) -> str:
        return self.ok("run", "--rm", image, "cat", path)

    def config(self, image: str) -> dict[str, object]:
        cfg: dict[str, object] = json.loads(self.ok("image", "inspect", image))[0]["Config"]
        return cfg

    def layers(self) -> set[str]:
        d = self.root / "layers"
        return set(os.listdir(d)) if d.exists() else set()


def _leaks(root: Path) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        found += [line.split()[4] for line in f if str(root) in line]
    found += [str(c) for d in cgroup_dirs() for c in d.iterdir() if c.is_dir()]  # a container's cgroup left
    for sub in ("containers", "tmp"):
        d = root / sub
        if d.exists():
            found += [str(d / n) for n in os.listdir(d)]
    return found


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    root = Path(tempfile.mkdtemp(prefix="pyc-test-build-", dir="/var/tmp"))
    try:
        s = Store(root)
        s.ok("image", "bootstrap", "busybox")
        yield s
        assert _leaks(root) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    d = tmp_path / "ctx"
    d.mkdir()
    return d


def write(ctx: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        p = ctx / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)


def test_instructions_into_the_config(store: Store, ctx: Path) -> None:
    write(
        ctx,
        {
            "Dockerfile": """\
ARG BASE=busybox
FROM --platform=$BUILDPLATFORM ${BASE}
ARG GREETING=hello
ARG TARGETARCH
ENV WHO=world PLAIN="a b" \\
    DEF=${UNSET:-fallback} ALT=${GREETING:+set}
ENV LEGACY value with spaces
ENV WHO=again OLD=$WHO
LABEL org.example.x="$GREETING $WHO" two=2
WORKDIR /app
WORKDIR sub
USER 1000:1000
EXPOSE 80 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost
ONBUILD USER 0
ONBUILD RUN echo triggered > /onbuild
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/sh", "-c", "echo \\"$0 $GREETING $WHO $TARGETARCH $PWD $(id -u)\\""]
CMD ["args"]
"""
        },
    )
    img = store.build(ctx, "--build-arg", "GREETING=hi", "-t", "conf:1")
    cfg = store.config("conf:1")
    env = cfg["Env"]
    assert isinstance(env, list)
    assert {"WHO=again", "OLD=world", "PLAIN=a b", "DEF=fallback", "ALT=set", "LEGACY=value with spaces"} <= set(env)
    assert not any(e.startswith("GREETING=") for e in env)  # ARGs are not kept in the image
    assert cfg["Labels"] == {"org.example.x": "hi again", "two": "2"}
    assert cfg["WorkingDir"] == "/app/sub" and cfg["User"] == "1000:1000"
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}} and cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000, "Retries": 3}
    assert cfg["OnBuild"] == ["USER 0", "RUN echo triggered > /onbuild"]
    # The entrypoint's shell sees the image's env, not the build's ARGs; WORKDIR made the dir.
    assert store.ok("run", "--rm", "conf:1") == "args  again  /app/sub 1000\n"
    assert store.ok("run", "--rm", "--entrypoint", "stat", "conf:1", "-c", "%u:%g %a", "/app/sub") == "0:0 755\n"
    # ONBUILD runs in the image built FROM it, and is not passed on.
    write(ctx, {"Dockerfile": "FROM conf:1\nRUN test -f /onbuild\n"})
    assert store.ok("build", str(ctx), "-t", "child:1").count("ONBUILD RUN echo triggered") == 1
    assert store.ok("run", "--rm", "--entrypoint", "cat", "child:1", "/onbuild") == "triggered\n"
    assert store.config("child:1").get("OnBuild") in (None, [])
    assert img == store.ok("image", "inspect", "--format", "{{.Id}}", "conf:1").strip()
    store.ok("rmi", "conf:1", "child:1")


def test_copy_and_add_from_the_context(store: Store, ctx: Path) -> None:
    write(
        ctx,
        {
            "a.txt": "a\n",
            "b.txt": "b\n",
            "c.md": "c\n",
            "dir/one": "1\n",
            "dir/sub/two": "2\n",
            "dir/skip.log": "no\n",
            "dir/keep.log": "yes\n",
            "secret/key": "no\n",
            ".dockerignore": "*/*.log\n!dir/keep.log\nsecret\n",
            "Dockerfile": """\
FROM busybox
COPY *.txt /multi/
COPY a.txt /renamed
COPY --chown=1000:2000 --chmod=0640 c.md /opt/owned/
COPY dir /tree
COPY dir/ ./rel/
ADD files.tar.gz /unpacked/
RUN ls -R /tree > /tree.list && ls -la /opt > /opt.list
""",
        },
    )
    os.chmod(ctx / "dir" / "one", 0o751)
    os.symlink("one", ctx / "dir" / "link")
    files = ctx / "files"
    (files / "x").mkdir(parents=True)
    (files / "x" / "in-tar").write_text("t\n")
    subprocess.run(["tar", "-czf", str(ctx / "files.tar.gz"), "-C", str(files), "--owner=7", "--group=8", "x"], check=True)
    shutil.rmtree(files)
    store.build(ctx, "-t", "copies:1")
    stat = "stat -c '%n %u:%g %a %F' /multi/a.txt /multi/b.txt /renamed /opt/owned/c.md /tree/one /tree/link /tree/sub/two /rel/one /unpacked/x/in-tar"
    out = store.ok("run", "--rm", "copies:1", "sh", "-c", stat + "; ls /tree; ls /opt/owned; test ! -e /multi/c.md && test ! -e /tree/secret && echo ok").splitlines()
    assert out == [
        "/multi/a.txt 0:0 644 regular file",
        "/multi/b.txt 0:0 644 regular file",
        "/renamed 0:0 644 regular file",
        "/opt/owned/c.md 1000:2000 640 regular file",
        "/tree/one 0:0 751 regular file",
        "/tree/link 0:0 777 symbolic link",
        "/tree/sub/two 0:0 644 regular file",
        "/rel/one 0:0 751 regular file",
        "/unpacked/x/in-tar 7:8 644 regular file",
        "keep.log",
        "link",
        "one",
        "sub",
        "c.md",
        "ok",
    ]
    assert store.file("copies:1", "/tree/link") == "1\n"
    store.ok("rmi", "copies:1")


def test_multi_stage_copy_from_and_target(store: Store, ctx: Path) -> None:
    write(
        ctx,
        {
            "Dockerfile": """\
FROM busybox AS builder
RUN mkdir -p /out/bin && echo built > /out/bin/result && chown -R 33:44 /out && chmod 750 /out/bin
FROM busybox AS broken
RUN exit 7
FROM scratch AS final
COPY --from=builder /out /
COPY --from=0 /bin/busybox /bin/
FROM final AS last
""",
        },
    )
    # A target is built with the stages it needs only: `broken` would fail.
    assert store.build(ctx, "--target", "final", "-t", "multi:1") == store.build(ctx)
    bb = "/bin/busybox"
    out = store.ok("run", "--rm", "multi:1", bb, "sh", "-c", f"{bb} stat -c '%u:%g %a' /bin /bin/result; {bb} cat /bin/result")
    assert out.splitlines() == ["33:44 750", "33:44 644", "built"]
    r = store("build", "-q", "--target", "broken", str(ctx))
    assert r.returncode == 1 and "Dockerfile:4: 'RUN exit 7' returned a non-zero code: 7" in r.stderr, r.stderr
    r = store("build", "-q", "--target", "nope", str(ctx))
    assert r.returncode == 1 and "no stage named 'nope'" in r.stderr
    store.ok("rmi", "multi:1")


def snapshot(store: Store) -> tuple[set[str], list[str], str]:
    return store.layers(), sorted(os.listdir(store.root / "oci" / "blobs" / "sha256")), store.ok("images", "-q")


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("FROM busybox\nRUN echo out; echo err >&2; exit 3\n", "Dockerfile:2: 'RUN echo out; echo err >&2; exit 3' returned a non-zero code: 3"),
        ("FROM busybox\nRUN echo fine > /f\nBOGUS\n", "Dockerfile:3: unknown instruction: BOGUS"),
        ("FROM busybox\nCOPY missing.txt /\n", "Dockerfile:2: missing.txt: not found in the build context"),
        ("FROM busybox\nENV A=${B:?needed}\n", "Dockerfile:2: B: needed"),
        ("FROM busybox\nCOPY --chown=nobody-here x /\n", "Dockerfile:2: invalid user"),
        ("FROM no-such-image\n", "Dockerfile:1: no such image: no-such-image"),
        ("FROM --platform=linux/s390x busybox\n", "Dockerfile:1: FROM --platform=linux/s390x: pyc builds for this machine only"),
        ("FROM busybox\nRUN [\"/no/such/program\"]\n", "Dockerfile:2: "),
    ],
)
def test_a_failed_build_writes_nothing(store: Store, ctx: Path, dockerfile: str, message: str) -> None:
    write(ctx, {"Dockerfile": dockerfile, "x": "x"})
    before = snapshot(store)
    r = store("build", "--no-cache", "-t", "failed:1", str(ctx))
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and message in err[0], r.stderr
    assert snapshot(store) == before
    assert store("image", "inspect", "failed:1").returncode == 1
    if "exit 3" in dockerfile:
        assert "out\nerr\n" in r.stdout  # the step's output is shown as it runs


@pytest.mark.timeout(600)  # eight builds: slack for a shared machine
def test_the_cache_runs_no_step_twice(store: Store, ctx: Path) -> None:
    write(
        ctx,
        {
            "a.txt": "a\n",
            "b.txt": "b\n",
            "Dockerfile": f"""\
FROM busybox
RUN {STAMP.format(0)}
COPY a.txt /
RUN {STAMP.format(1)}
ARG MODE=one
COPY b.txt /
RUN {STAMP.format(2)}
RUN echo $MODE > /mode && {STAMP.format(3)}
""",
        },
    )
    stamps = "cat /stamp-0 /stamp-1 /stamp-2 /stamp-3 /mode"

    def build(*flags: str) -> tuple[str, list[str], str]:
        out = store.ok("build", "-t", "cached:1", *flags, str(ctx))
        return out.strip().splitlines()[-1], store.ok("run", "--rm", "cached:1", "sh", "-c", stamps).splitlines(), out

    first, s1, out = build()
    assert out.count("Using cache") == 0
    again, s2, out = build()
    # Nothing ran: the same image, the same stamps, every step from the cache.
    assert again == first and s2 == s1 and out.count("Using cache") == 6, out
    # Another directory with the same content hits the cache too (mtimes differ).
    other = ctx.parent / "other"
    shutil.copytree(ctx, other)
    os.utime(other / "a.txt", (1, 1))
    assert store.build(other, "-t", "cached:1") == first
    # One copied file changed: the steps from its COPY on run again, not those before.
    (ctx / "b.txt").write_text("B\n")
    _, s3, out = build()
    assert s3[:2] == s1[:2] and s3[2] != s1[2] and s3[3] != s1[3] and out.count("Using cache") == 3, out
    # A build arg changes only the steps that see it: as in BuildKit, the RUNs after its ARG
    # (it is in their environment), not the steps before nor a COPY after it.
    _, s4, out = build("--build-arg", "MODE=two")
    assert s4[:2] == s3[:2] and s4[2] != s3[2] and s4[3] != s3[3] and s4[4] == "two", (s3, s4)
    assert out.count("Using cache") == 4, out
    # --no-cache runs every step.
    _, s5, out = build("--build-arg", "MODE=two", "--no-cache")
    assert all(a != b for a, b in zip(s5[:4], s4[:4], strict=True)) and "Using cache" not in out
    store.ok("rmi", "cached:1")


def test_builder_prune_frees_the_cache(store: Store, ctx: Path) -> None:
    write(ctx, {"Dockerfile": f"FROM busybox\nRUN {STAMP.format('prune')}\n"})
    before = store.layers()
    img = store.build(ctx)
    store.ok("rmi", img)
    made = store.layers() - before
    assert len(made) == 1  # the step's layer, kept by the cache with no image left
    assert store.build(ctx) == img  # from the cache
    store.ok("rmi", img)
    df = [line.split() for line in store.ok("system", "df").splitlines() if line.startswith("Build Cache")]
    assert len(df) == 1 and int(df[0][2]) > 0 and df[0][4] != "0B", df
    out = store.ok("builder", "prune", "-a", "-f")
    assert out.startswith("Deleted build cache objects:\n") and "Total reclaimed space:" in out, out
    assert store.layers() <= before - made  # the step's layer gone, and what other builds cached
    assert [line.split()[2:5] for line in store.ok("system", "df").splitlines() if line.startswith("Build Cache")] == [["0", "0", "0B"]]
    assert store.ok("run", "--rm", "busybox", "echo", "ok") == "ok\n"  # images keep theirs
    assert store.build(ctx) != img  # the step ran again
    store.ok("rmi", store.build(ctx))


def test_source_date_epoch_gives_the_same_image_in_two_stores(store: Store, ctx: Path, tmp_path: Path) -> None:
    write(
        ctx,
        {
            "a.txt": "a\n",
            "Dockerfile": "FROM busybox\nCOPY a.txt /app/\nRUN mkdir -p /app/d && echo made > /app/d/f && touch /app/a.txt\nWORKDIR /w\nENV K=V\nCMD [\"cat\", \"/app/d/f\"]\n",
        },
    )
    epoch = {"SOURCE_DATE_EPOCH": "1700000000"}
    first = store.build(ctx, env=epoch)
    second_root = Path(tempfile.mkdtemp(prefix="pyc-test-build2-", dir="/var/tmp"))
    try:
        other = Store(second_root)
        other.ok("image", "bootstrap", "busybox")
        os.utime(ctx / "a.txt")  # a newer mtime: clamped all the same
        assert other.build(ctx, env=epoch) == first
        assert other.ok("run", "--rm", first) == "made\n"
        created = json.loads(other.ok("image", "inspect", first))[0]["Created"]
        assert created.startswith("2023-11-14T22:13:20")
        assert _leaks(second_root) == []
    finally:
        shutil.rmtree(second_root, ignore_errors=True)
    # Without it the times are the build's: another image.
    assert store.build(ctx, "--no-cache") != first


def test_quiet_iidfile_stdin_dockerfile_and_heredoc(store: Store, ctx: Path, tmp_path: Path) -> None:
    iid = tmp_path / "iid"
    text = "FROM busybox\nRUN <<EOF\necho from-heredoc > /h\nEOF\nRUN cat > /g <<EOT\nline\nEOT\nCOPY --chmod=0755 <<one <<two /docs/\n#!/bin/sh\none\nsecond\ntwo\n"
    out = store.ok("build", "-q", "-f", "-", "--iidfile", str(iid), str(ctx), input=text)
    assert out.strip() == iid.read_text()
    assert store.ok("run", "--rm", iid.read_text(), "cat", "/h", "/g", "/docs/one", "/docs/two") == "from-heredoc\nline\n#!/bin/sh\nsecond\n"
    assert store.ok("run", "--rm", iid.read_text(), "stat", "-c", "%a %u", "/docs/one") == "755 0\n"
    store.ok("rmi", iid.read_text())


def test_no_build_leaves_a_container_or_cgroup(store: Store) -> None:
    assert store.ok("ps", "-a", "-q") == ""
    assert not [c for d in cgroup_dirs() for c in d.iterdir() if c.is_dir()], CGROUP_PARENT


def test_symlinks_lead_nowhere_out_of_the_image_or_the_stage(store: Store, ctx: Path, tmp_path: Path) -> None:
    """A stage's symlink to /etc is the image's /etc, never the host's; a context symlink is
    not followed out of the context, nor does one copied in a step carry a later write of the
    same step out of the layer."""
    write(
        ctx,
        {
            "Dockerfile": """\
FROM busybox AS links
RUN ln -s /etc /link && echo image > /etc/marker
FROM busybox
COPY --from=links /link/marker /from-image
""",
        },
    )
    store.build(ctx, "-t", "links:1")
    assert store.file("links:1", "/from-image") == "image\n"
    # /etc/os-release is the host's, never a file of the image's layers.
    write(ctx, {"Dockerfile": "FROM busybox AS links\nRUN ln -s /etc /link\nFROM busybox\nCOPY --from=links /link/os-release /x\n"})
    r = store("build", "-q", str(ctx))
    assert r.returncode == 1 and "/link/os-release: not found in the source stage" in r.stderr, r.stderr
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), ctx / "d")
    (ctx / "e" / "d").mkdir(parents=True)
    (ctx / "e" / "d" / "planted").write_text("x\n")
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY d e /dest/\n"})
    r = store("build", "-q", str(ctx))
    assert r.returncode == 1 and "d: d points outside the build context" in r.stderr, r.stderr
    os.unlink(ctx / "d")
    (ctx / "f").mkdir()
    os.symlink(str(outside), ctx / "f" / "d")
    # f/d, a symlink out, is copied as /dest/d; e/d, a directory, then takes its place.
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY f e /dest/\n"})
    store.build(ctx, "-t", "links:2")
    assert os.listdir(outside) == []
    assert store.ok("run", "--rm", "links:2", "sh", "-c", "test -d /dest/d && test ! -L /dest/d && cat /dest/d/planted") == "x\n"
    store.ok("rmi", "links:1", "links:2")


# The corpus podman 4.3 (buildah 1.28) builds too: no heredocs, no COPY --link.
PODMAN_CORPUS = {
    "copies": (
        """\
FROM busybox
ARG DIR=/opt/app
ENV TARGET=$DIR/data
WORKDIR $DIR
COPY *.txt ./
COPY --chown=1000:2000 --chmod=0640 c.md /opt/owned/
COPY dir ${TARGET}/
ADD files.tar.gz /unpacked/
RUN mkdir -p /made/deep && echo made > /made/deep/f && ln -s deep/f /made/link && rm /bin/vi && chmod 700 /made
""",
        {"a.txt": "a\n", "b.txt": "b\n", "c.md": "c\n", "dir/one": "1\n", "dir/sub/two": "2\n", "dir/skip.log": "no\n", ".dockerignore": "dir/*.log\n"},
    ),
    "stages": (
        """\
FROM busybox AS builder
RUN mkdir -p /out/bin && echo built > /out/bin/result && chown -R 33:44 /out && chmod 750 /out/bin
FROM busybox
COPY --from=builder /out /srv/
COPY --from=builder /out/bin/result /srv/copy
USER 33
""",
        {},
    ),
}


def tree(tar_bytes: bytes) -> dict[str, tuple[object, ...]]:
    """Each entry of an exported filesystem: type, mode, owner, size, link target, content."""
    import hashlib
    import io
    import tarfile

    out: dict[str, tuple[object, ...]] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
            out[m.name.strip("/").removeprefix("./")] = (m.type, m.mode, m.uid, m.gid, m.size, m.linkname, hashlib.sha256(data).hexdigest())
    return out


@pytest.fixture(scope="module")
def podman(store: Store) -> Iterator[list[str]]:
    """A podman with a root of its own (runc: crun refuses a hybrid host's cgroups), holding
    pyc's busybox."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (setup.sh installs it)")
    base = Path(tempfile.mkdtemp(prefix="pyc-test-podman-", dir="/var/tmp"))
    cmd = ["podman", "--root", str(base / "root"), "--runroot", str(base / "run"), "--storage-driver", "overlay", "--runtime", "runc"]
    try:
        store.ok("save", "busybox", "-o", str(base / "busybox.tar"))
        subprocess.run([*cmd, "load", "-q", "-i", str(base / "busybox.tar")], check=True, capture_output=True)
        yield cmd
    finally:
        subprocess.run([*cmd, "rm", "-a", "-f"], capture_output=True)
        subprocess.run([*cmd, "rmi", "-a", "-f"], capture_output=True)
        # podman's overlay driver mounts its dir on itself and leaves it so
        subprocess.run(["umount", str(base / "root" / "overlay")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(PODMAN_CORPUS))
def test_podman_builds_the_same_tree(store: Store, podman: list[str], ctx: Path, name: str) -> None:
    dockerfile, files = PODMAN_CORPUS[name]
    write(ctx, {"Dockerfile": dockerfile, **files})
    files_dir = ctx.parent / "files"
    (files_dir / "x").mkdir(parents=True)
    (files_dir / "x" / "in-tar").write_text("t\n")
    subprocess.run(["tar", "-czf", str(ctx / "files.tar.gz"), "-C", str(files_dir), "--owner=7", "--group=8", "x"], check=True)
    img = store.build(ctx)
    ours = store.ok("create", img, "true").strip()
    try:
        mine = subprocess.run([PYC, "export", ours], capture_output=True, env=store.env, check=True).stdout
    finally:
        store.ok("rm", ours)
    r = subprocess.run([*podman, "build", "-q", "--pull=never", "--network=none", str(ctx)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    theirs = subprocess.run([*podman, "create", r.stdout.strip().splitlines()[-1], "true"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        exported = subprocess.run([*podman, "export", theirs], capture_output=True, check=True).stdout
    finally:
        subprocess.run([*podman, "rm", theirs], capture_output=True)
    a, b = tree(mine), tree(exported)
    assert sorted(set(a) ^ set(b)) == []
    assert len(a) > 250 and {k: (a[k], b[k]) for k in a if a[k] != b[k]} == {}
    # The image pyc built loads into podman and runs there (with limits runc may set here).
    archive = ctx.parent / "image.tar"
    store.ok("save", img, "-o", str(archive))
    loaded = subprocess.run([*podman, "load", "-q", "-i", str(archive)], capture_output=True, text=True, check=True).stdout
    image_id = loaded.strip().rpartition(":")[2]
    limits = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
    r = subprocess.run([*podman, "run", "--rm", "--network", "none", *limits, image_id, "cat", "/srv/copy" if name == "stages" else "/made/link"], capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, "built\n" if name == "stages" else "made\n"), r.stderr
    store.ok("rmi", img)


def test_a_context_from_a_tar_or_standard_input(store: Store, ctx: Path, tmp_path: Path) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", "other.Dockerfile": "FROM busybox\nCOPY in/f /g\n", "in/f": "f\n", ".dockerignore": "*.Dockerfile\n"})
    archive = tmp_path / "ctx.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(ctx), "."], check=True)
    img = store.build(archive)
    assert sorted(store.ok("run", "--rm", img, "find", "/ctx", "-type", "f").split()) == ["/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/in/f"]
    # -f names a file inside an archived context; the archive on standard input.
    with open(archive, "rb") as f:
        r = subprocess.run([PYC, "build", "-q", "-f", "other.Dockerfile", "-"], stdin=f, env=store.env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    other = r.stdout.strip()
    assert store.file(other, "/g") == "f\n"
    # A Dockerfile on standard input: an empty context.
    alone = store.ok("build", "-q", "-", input="FROM busybox\nRUN echo alone > /a\nCOPY . /empty/\n").strip()
    assert store.ok("run", "--rm", alone, "sh", "-c", "cat /a; ls -A /empty") == "alone\n"
    r = store("build", "-q", str(ctx / "in" / "f"))
    assert r.returncode == 1 and "is neither a directory nor a tar archive" in r.stderr
    store.ok("rmi", img, other, alone)


def test_from_an_image_of_a_registry(plain_registry: Registry, conf: Path, reg_env: dict[str, str], tmp_path: Path) -> None:
    """A FROM the store lacks is pulled; with --pull the registry is asked again."""
    r = plain_registry
    insecure(conf, r.host)
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": f"FROM {r.host}/test/busybox:1\nRUN echo on-pulled > /p\n"})
    seen = len(r.requests())
    built = pyc("build", "-q", str(ctx), env=reg_env)
    assert built.returncode == 0, built.stderr
    assert any("/blobs/" in p for _, p in r.requests()[seen:])
    assert pyc("run", "--rm", built.stdout.strip(), "cat", "/p", env=reg_env).stdout == "on-pulled\n"
    seen = len(r.requests())
    assert pyc("build", "-q", str(ctx), env=reg_env).stdout == built.stdout
    assert r.requests()[seen:] == []  # in the store: the registry is not asked
    again = pyc("build", "-q", "--pull", str(ctx), env=reg_env)
    assert again.stdout == built.stdout, again.stderr
    assert ("HEAD", "/v2/test/busybox/manifests/1") in r.requests()[seen:]
    assert pyc("rmi", built.stdout.strip(), env=reg_env).returncode == 0


def test_output_writes_the_files_too(store: Store, ctx: Path, tmp_path: Path) -> None:
    write(ctx, {"Dockerfile": "FROM busybox AS b\nRUN mkdir /o && echo out > /o/f && chown 5:6 /o/f\nFROM scratch\nCOPY --from=b /o /\n"})
    local, tar = tmp_path / "local", tmp_path / "files.tar"
    img = store.build(ctx, "-o", f"type=local,dest={local}", "--output", f"type=tar,dest={tar}")
    assert sorted(os.listdir(local)) == ["f"] and (local / "f").read_text() == "out\n"
    assert ((local / "f").stat().st_uid, (local / "f").stat().st_gid) == (5, 6)
    assert subprocess.run(["tar", "-tvf", str(tar)], capture_output=True, text=True, check=True).stdout.split()[1:3] == ["5/6", "4"]
    # To standard output: the tar alone there.
    r = subprocess.run([PYC, "build", "-o", "type=tar,dest=-", str(ctx)], capture_output=True, env=store.env)
    assert r.returncode == 0 and r.stdout == tar.read_bytes(), r.stderr
    r = store("build", "-o", "type=zip,dest=x", str(ctx))
    assert r.returncode == 1 and "invalid --output 'type=zip,dest=x'" in r.stderr
    store.ok("rmi", img)


def test_a_step_keeps_only_its_own_changes(store: Store, ctx: Path) -> None:
    """On an image without /proc, /dev, /sys or /etc, a RUN's layer holds what it made, not the
    mount points its container needed."""
    import tarfile

    write(ctx, {"Dockerfile": "FROM busybox AS b\nFROM scratch\nCOPY --from=b /bin/busybox /bin/\nRUN [\"/bin/busybox\", \"mkdir\", \"/made\"]\n"})
    img = store.build(ctx)
    diff_id = json.loads(store.ok("image", "inspect", img))[0]["RootFS"]["Layers"][-1]
    with tarfile.open(store.root / "oci" / "blobs" / "sha256" / diff_id[7:]) as t:
        assert t.getnames() == ["made"]
    store.ok("rmi", img)


def test_run_mounts_are_not_kept(store: Store, ctx: Path, tmp_path: Path) -> None:
    """A cache mount outlives the step (and the build), a tmpfs and a bind do not reach the
    layer, a bind is read-only and its files are in the cache key, a secret is mounted and
    kept nowhere."""
    import tarfile

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    write(
        ctx,
        {
            "in/f": "bound\n",
            "Dockerfile": """\
FROM busybox
RUN --mount=type=cache,target=/var/cache/x,id=c1 echo kept >> /var/cache/x/log && cp /var/cache/x/log /cache-seen
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && ls /scratch > /tmpfs-seen
RUN --mount=type=bind,source=in,target=/src cat /src/f > /bind-seen && ! touch /src/new 2>/dev/null
RUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok | wc -c > /secret-size
""",
        },
    )
    img = store.build(ctx, "--secret", f"id=tok,src={token}")
    out = store.ok("run", "--rm", img, "sh", "-c", "cat /cache-seen /tmpfs-seen /bind-seen /secret-size; ls /var/cache/x /scratch /src /run/secrets 2>&1 | wc -l")
    assert out.split("\n")[:4] == ["kept", "t", "bound", "7"], out
    layers = json.loads(store.ok("image", "inspect", img))[0]["RootFS"]["Layers"][-4:]
    names = []
    for diff_id in layers:
        with tarfile.open(store.root / "oci" / "blobs" / "sha256" / diff_id[7:]) as t:
            names.append(sorted(t.getnames()))
    assert names == [["cache-seen"], ["tmpfs-seen"], ["bind-seen"], ["secret-size"]], names
    # The cache dir is kept for the next build: the step runs again and sees its last run.
    again = store.build(ctx, "--no-cache", "--secret", f"id=tok,src={token}")
    assert store.file(again, "/cache-seen") == "kept\nkept\n"
    # The secret's content is in no key: another one, every step from the cache.
    token.write_text("other\n")
    assert store.build(ctx, "--secret", f"id=tok,src={token}") == again
    # A bound file changed: that step runs again (and the one after it, which sees the new secret).
    (ctx / "in" / "f").write_text("changed\n")
    third = store.build(ctx, "--secret", f"id=tok,src={token}")
    assert store.file(third, "/bind-seen") == "changed\n" and store.file(third, "/secret-size") == "6\n"
    assert store.file(third, "/cache-seen") == "kept\nkept\n"
    r = store("build", "-q", str(ctx))
    assert r.returncode == 1 and "Dockerfile:5: RUN --mount type=secret,id=tok: no such secret" in r.stderr, r.stderr
    store.ok("rmi", img, again, third)
    store.ok("builder", "prune", "-a", "-f")  # the cache mount goes with it
    assert not (store.root / "buildcache" / "mounts").exists()


def test_run_binds_from_a_stage_or_an_image_and_rw(store: Store, ctx: Path) -> None:
    """RUN --mount=type=bind,from= binds a stage's or an image's files (owners kept, read-only;
    their content in the key, so a changed stage re-runs the step); rw lets the step write into
    its copy, which nothing keeps: not the layer, not the context, not the stage's files."""
    write(
        ctx,
        {
            "in/f": "ctx\n",
            "Dockerfile": """\
FROM busybox AS tools
ARG V=one
RUN mkdir /tools && echo $V > /tools/v && chown 7:8 /tools/v
FROM busybox
RUN --mount=type=bind,from=tools,source=/tools,target=/t stat -c '%u:%g' /t/v > /owner && cat /t/v > /v && ! touch /t/x 2>/dev/null
RUN --mount=type=bind,from=busybox,source=/bin,target=/bb /bb/busybox echo from-image > /img
RUN --mount=type=bind,source=in,target=/src,rw echo written >> /src/f && echo new > /src/g && cat /src/f > /rw-seen
RUN --mount=type=bind,from=tools,source=/tools,target=/t,rw echo w > /t/v && touch /t/y && cat /t/v > /rw-tools
RUN --mount=type=bind,from=tools,source=/tools,target=/t cat /t/v > /after && ! ls /t/y 2>/dev/null
""",
        },
    )
    img = store.build(ctx)
    out = store.ok("run", "--rm", img, "sh", "-c", "cat /owner /v /img /rw-seen /rw-tools /after; ls /t /src /bb 2>&1 | wc -l")
    assert out.split("\n")[:7] == ["7:8", "one", "from-image", "ctx", "written", "w", "one"], out
    assert (ctx / "in" / "f").read_text() == "ctx\n" and not (ctx / "in" / "g").exists()
    layers = json.loads(store.ok("image", "inspect", img))[0]["RootFS"]["Layers"][-5:]
    import tarfile

    names = []
    for diff_id in layers:
        with tarfile.open(store.root / "oci" / "blobs" / "sha256" / diff_id[7:]) as t:
            names.append(sorted(t.getnames()))
    assert names == [["owner", "v"], ["img"], ["rw-seen"], ["rw-tools"], ["after"]], names
    assert store.build(ctx) == img  # all from the cache
    # The bound stage changed: the steps that bind it run again.
    other = store.build(ctx, "--build-arg", "V=two")
    assert store.file(other, "/v") == "two\n" and store.file(other, "/after") == "two\n"
    for spec, message in [
        ("type=bind,from=nowhere,target=/t", "nowhere"),
        ("type=bind,from=tools,source=/missing,target=/t", "/missing: not found"),
        ("type=bind,target=/t,rw=maybe", "rw=maybe: true or false"),
        ("type=bind,target=/t,rw,readonly", "readonly and rw say the opposite"),
    ]:
        write(ctx, {"Dockerfile": f"FROM busybox AS tools\nRUN mkdir /tools\nFROM busybox\nRUN --mount={spec} true\n"})
        before = snapshot(store)
        r = store("build", "-q", str(ctx))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith("pyc: Dockerfile:4: ") and message in r.stderr, (spec, r.stderr)
        assert snapshot(store)[2] == before[2]
    store.ok("rmi", img, other)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on the loopback, in a thread of the test, serving a directory of its own:
    (its base URL, the directory)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_add_of_a_url_downloads_it(store: Store, ctx: Path, web: tuple[str, Path]) -> None:
    """ADD URL as BuildKit: the file (0600, the server's Last-Modified as its mtime), named after
    the URL in a directory, an archive not unpacked, --checksum checked; the step's key is the
    content (the checksum, with --checksum: no download for a cached step): a changed file on
    the server makes the step and those after it run again."""
    import hashlib
    import tarfile

    url, www = web
    (www / "data.txt").write_text("served\n")
    os.utime(www / "data.txt", (1_600_000_000, 1_600_000_000))
    with tarfile.open(www / "a.tar.gz", "w:gz") as t:
        t.add(www / "data.txt", "inside")
    good = "sha256:" + hashlib.sha256(b"served\n").hexdigest()
    write(
        ctx,
        {
            "Dockerfile": f"FROM busybox\nADD {url}/data.txt {url}/a.tar.gz /dl/\nADD --checksum={good} --chmod=644 {url}/data.txt /named\nRUN {STAMP.format('url')}\n",
        },
    )
    img = store.build(ctx)
    out = store.ok("run", "--rm", img, "sh", "-c", "stat -c '%n %a %u %Y' /dl/data.txt /dl/a.tar.gz /named; cat /named; cat /stamp-url")
    lines = out.splitlines()
    assert lines[0] == "/dl/data.txt 600 0 1600000000" and lines[1].startswith("/dl/a.tar.gz 600 0 ") and lines[2].startswith("/named 644 0 ") and lines[3] == "served", out
    assert store.build(ctx) == img  # the same content: every step from the cache
    # With --checksum the step's key is known without the file: a cached step downloads nothing.
    write(ctx, {"Dockerfile": f"FROM busybox\nADD --checksum={good} {url}/data.txt /named\n"})
    only = store.build(ctx)
    (www / "data.txt").rename(www / "gone.txt")
    assert store.build(ctx) == only
    (www / "gone.txt").rename(www / "data.txt")
    (www / "data.txt").write_text("changed\n")
    before = snapshot(store)
    r = store("build", "-q", "--no-cache", str(ctx))
    assert r.returncode == 1 and r.stderr == (
        f"pyc: Dockerfile:2: ADD {url}/data.txt: checksum mismatch: --checksum={good}, the download is sha256:{hashlib.sha256(b'changed' + bytes([10])).hexdigest()}\n"
    ), r.stderr
    assert snapshot(store) == before
    write(ctx, {"Dockerfile": f"FROM busybox\nADD {url}/data.txt /dl/\nRUN {STAMP.format('url')}\n"})
    first = store.build(ctx)
    (www / "data.txt").write_text("changed again\n")
    second = store.build(ctx)
    assert store.file(second, "/dl/data.txt") == "changed again\n" and store.file(second, "/stamp-url") != store.file(first, "/stamp-url")
    for src, message in [
        (f"{url}/missing", f"Dockerfile:2: ADD {url}/missing: the server answered 404 File not found"),
        ("http://127.0.0.1:9/x", "Dockerfile:2: ADD http://127.0.0.1:9/x: cannot download: [Errno 111] Connection refused"),
        (f"{url}/", f"Dockerfile:2: ADD {url}/: no file name in the URL"),
        (f"--checksum=md5:0 {url}/data.txt", "Dockerfile:2: invalid --checksum=md5:0: use sha256:<64 hex digits>"),
        ("--checksum=sha256:0 x", "Dockerfile:2: ADD --checksum is for a URL source"),
    ]:
        write(ctx, {"Dockerfile": f"FROM busybox\nADD {src} /dl/\n", "x": "x"})
        before = snapshot(store)
        r = store("build", "-q", str(ctx))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and message in r.stderr, (src, r.stderr)
        assert snapshot(store) == before
    write(ctx, {"Dockerfile": f"FROM busybox\nCOPY {url}/data.txt /\n"})
    r = store("build", "-q", str(ctx))
    assert r.returncode == 1 and f"Dockerfile:2: {url}/data.txt: a URL is a source for ADD only" in r.stderr, r.stderr
    store.ok("rmi", img, only, first, second)


def test_add_of_a_url_revalidates_as_buildkit(store: Store, ctx: Path, tmp_path: Path) -> None:
    """A second build asks the server with the ETag and Last-Modified it gave: a 304 keeps the
    step cached (no body sent), changed content (a new ETag, a 200) runs it and those after it
    again. The kept download serves a 304 for a step that must run (--no-cache)."""
    import email.utils
    import hashlib
    import http.server
    import threading

    content = {"body": b"v1\n", "modified": email.utils.formatdate(1_600_000_000, usegmt=True)}
    seen: list[tuple[str | None, str | None, int]] = []

    class Conditional(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            etag = '"' + hashlib.sha256(content["body"]).hexdigest()[:16] + '"'  # type: ignore[arg-type]
            inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
            code = 304 if inm == etag else 200
            seen.append((inm, ims, code))
            self.send_response(code)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", str(content["modified"]))
            if code == 200:
                self.send_header("Content-Length", str(len(content["body"])))
            self.end_headers()
            if code == 200:
                self.wfile.write(content["body"])  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Conditional)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/file.txt"
        write(ctx, {"Dockerfile": f"FROM busybox\nADD {url} /dl/\nRUN {STAMP.format('reval')}\n"})
        first = store.build(ctx)
        etag = '"' + hashlib.sha256(b"v1\n").hexdigest()[:16] + '"'
        assert seen == [(None, None, 200)], seen
        assert store.build(ctx) == first  # 304: the step and the RUN after it from the cache
        assert seen[-1] == (etag, content["modified"], 304), seen
        forced = store.build(ctx, "--no-cache")  # the step runs: the kept file, after a 304
        assert seen[-1][2] == 304 and store.file(forced, "/dl/file.txt") == "v1\n"
        assert store.ok("run", "--rm", forced, "stat", "-c", "%a %Y", "/dl/file.txt") == "600 1600000000\n"
        content["body"] = b"v2\n"
        second = store.build(ctx)
        assert seen[-1] == (etag, content["modified"], 200), seen
        assert store.file(second, "/dl/file.txt") == "v2\n" and store.file(second, "/stamp-reval") != store.file(first, "/stamp-reval")
        store.ok("rmi", first, forced, second)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    store.ok("builder", "prune", "-a", "-f")  # the kept downloads go with it
    assert not (store.root / "buildcache" / "urls").exists()


def test_parser_directives_in_a_build(store: Store, ctx: Path) -> None:
    write(ctx, {"Dockerfile": "# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nENV DIR=C:\\dir\\sub Q=\"a`\"b\"\nRUN echo one `\n    two > /cont && echo \"$DIR $Q\" >> /cont\n"})
    img = store.build(ctx)
    assert store.file(img, "/cont") == 'one two\nC:\\dir\\sub a"b\n'
    store.ok("rmi", img)


def test_a_run_bind_of_the_context_leaves_out_what_dockerignore_does(store: Store, ctx: Path) -> None:
    """RUN --mount=type=bind of the whole context (or of a directory of it) shows what BuildKit's
    context holds: no ignored file, the exceptions back; the bind read-only still."""
    write(ctx, {".dockerignore": "secret*\nsub/gen\n!sub/gen/keep\n", "secret.key": "k", "a": "a", "sub/b": "b", "sub/gen/x": "x", "sub/gen/keep": "keep"})
    runs = ["RUN --mount=type=bind,target=/ctx find /ctx | sort > /seen && ! touch /ctx/new 2>/dev/null", "RUN --mount=type=bind,source=sub,target=/s find /s | sort > /sub"]
    write(ctx, {"Dockerfile": "FROM busybox\n" + "\n".join(runs) + "\n"})
    img = store.build(ctx)
    assert store.file(img, "/seen").split() == ["/ctx", "/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/a", "/ctx/sub", "/ctx/sub/b", "/ctx/sub/gen", "/ctx/sub/gen/keep"]
    assert store.file(img, "/sub").split() == ["/s", "/s/b", "/s/gen", "/s/gen/keep"]
    assert (ctx / "sub" / "gen" / "x").read_text() == "x" and not (ctx / "new").exists()
    (ctx / "secret.key").write_text("changed")  # an ignored file is in no key
    assert store.build(ctx) == img
    store.ok("rmi", img)


def test_copy_link_layers_do_not_depend_on_the_image_below(store: Store, ctx: Path) -> None:
    """COPY --link as BuildKit: its layer is laid out on nothing (parents new, 0755, root's; no
    symlink of the image below followed) and its cache key leaves the image below out, so a
    changed base takes the layer as it is from the cache; the steps after it run again."""
    import tarfile

    write(
        ctx,
        {
            "a.txt": "a\n",
            "Dockerfile": f"FROM busybox\nARG V=1\nRUN mkdir -m 700 /app && echo $V > /base\nCOPY --link a.txt /app/\nRUN {STAMP.format('link')}\n",
        },
    )

    def layers(img: str) -> list[str]:
        out: list[str] = json.loads(store.ok("image", "inspect", img))[0]["RootFS"]["Layers"]
        return out

    first = store.ok("build", "--build-arg", "V=1", str(ctx))
    img1 = first.strip().splitlines()[-1]
    second = store.ok("build", "--build-arg", "V=2", str(ctx))
    img2 = second.strip().splitlines()[-1]
    assert second.count("Using cache") == 1 and "COPY --link a.txt /app/\n--> Using cache" in second, second
    l1, l2 = layers(img1), layers(img2)
    assert l1[-2] == l2[-2] and l1[-3] != l2[-3] and l1[-1] != l2[-1]  # the COPY's layer reused on a new base
    with tarfile.open(store.root / "oci" / "blobs" / "sha256" / l2[-2][7:]) as t:
        assert [(m.name, oct(m.mode & 0o7777), m.uid) for m in t.getmembers()] == [("app", "0o755", 0), ("app/a.txt", "0o644", 0)]
    assert store.ok("run", "--rm", img2, "sh", "-c", "cat /base /app/a.txt; stat -c %a /app") == "2\na\n755\n"
    # without --link the same COPY takes /app's mode from the image and is keyed on it
    (ctx / "Dockerfile").write_text((ctx / "Dockerfile").read_text().replace("--link ", ""))
    img3 = store.build(ctx, "--build-arg", "V=2")
    assert store.ok("run", "--rm", img3, "stat", "-c", "%a", "/app") == "700\n"
    store.ok("rmi", img1, img2, img3)


@pytest.mark.timeout(300)
def test_independent_stages_run_side_by_side_and_only_those_needed(store: Store, ctx: Path) -> None:
    """Two stages that need nothing of each other run at once: each one's RUN waits for a file
    the other's RUN makes in a cache mount both share, and gives up after 60 s (one after the
    other, the first would fail). A stage the target does not need is not built (it would fail).
    A stage that needs one of them runs once it is built; the rebuild is all cache."""
    sync = f"sync-{os.urandom(4).hex()}"
    wait = "touch /sync/{0}; i=0; until [ -e /sync/{1} ]; do i=$((i+1)); [ $i -lt 600 ] || exit 7; sleep 0.1; done; echo {0} > /{0}"
    write(
        ctx,
        {
            "Dockerfile": f"""\
FROM busybox AS left
RUN --mount=type=cache,id={sync},target=/sync {wait.format("left", "right")}
FROM busybox AS unused
RUN exit 9
FROM left AS after-left
RUN cat /left > /after-left
FROM busybox AS right
ARG R=right
RUN --mount=type=cache,id={sync},target=/sync {wait.format("$R", "left")}
FROM busybox
COPY --from=after-left /after-left /
COPY --from=right /right /
""",
        },
    )
    out = store.ok("build", "--build-arg", "R=right", str(ctx))
    img = out.strip().splitlines()[-1]
    assert store.ok("run", "--rm", img, "cat", "/after-left", "/right") == "left\nright\n"
    assert "exit 9" not in out and "[2/5]" not in out, out
    again = store.ok("build", "--build-arg", "R=right", str(ctx))
    assert again.strip().splitlines()[-1] == img and "--> Done" not in again, again
    store.ok("rmi", img)
    # A stage that fails: the build fails with its error, and the other stage's steps after it do not run.
    write(ctx, {"Dockerfile": "FROM busybox AS a\nRUN exit 3\nFROM busybox AS b\nRUN sleep 1\nRUN touch /late\nFROM busybox\nCOPY --from=a / /a\nCOPY --from=b / /b\n"})
    before = snapshot(store)
    r = store("build", "-q", "--no-cache", "-t", "failed:1", str(ctx))
    assert r.returncode == 1 and r.stderr == "pyc: Dockerfile:2: 'RUN exit 3' returned a non-zero code: 3\n", r.stderr
    assert snapshot(store)[2] == before[2] and _leaks(store.root) == []


def _watch(store: Store, mode: str, ctx: Path, *flags: str, when: tuple[list[bytes], Callable[[subprocess.Popen[bytes]], object]] | None = None, rc: int = 0) -> str:
    """`pyc build --progress MODE` with its output on a pipe (plain) or a terminal (tty), read as
    it comes: once it shows each of `when`'s texts, `when`'s action is called (makes the file a
    RUN waits for, sends a signal). Its output, escape sequences taken out; its exit code `rc`."""
    import pty
    import re
    import select
    import time

    if mode == "tty":
        master, out = pty.openpty()
    else:
        master, out = os.pipe()
    p = subprocess.Popen([PYC, "build", "--progress", mode, *flags, str(ctx)], stdout=out, stderr=subprocess.STDOUT, env={**store.env, "TERM": "xterm", "COLUMNS": "200"})
    os.close(out)
    seen = b""
    try:
        end = time.monotonic() + 240
        while True:
            assert time.monotonic() < end, seen
            if select.select([master], [], [], 1)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # a terminal whose other side is closed: EIO
                    chunk = b""
                if not chunk:
                    break
                seen += chunk
            if when is not None and all(text in seen for text in when[0]):
                when[1](p)
                when = None
        assert p.wait(60) == rc, seen
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", seen.decode(errors="replace"))


@pytest.mark.parametrize("mode", ["plain", "tty"])
def test_progress_shows_each_step_with_its_time_and_run_output_live(store: Store, ctx: Path, mode: str) -> None:
    import hashlib
    import re

    cache_id = f"live-{os.urandom(4).hex()}"
    write(ctx, {"Dockerfile": f"FROM busybox\nENV K=V\nRUN --mount=type=cache,id={cache_id},target=/sync echo fir''st-line; until [ -e /sync/go ]; do sleep 0.1; done; echo sec''ond-line\n"})
    sync = store.root / "buildcache" / "mounts" / hashlib.sha256(cache_id.encode()).hexdigest()[:32]
    # The RUN waits for a file made once its first line is seen: its output comes as it runs.
    out = _watch(store, mode, ctx, when=([b"first-line"], lambda p: (sync / "go").touch()))
    again = _watch(store, mode, ctx)
    if mode == "plain":
        assert re.search(r"STEP 3/3: RUN --mount=\S+ echo fir''st-line;.*\nfirst-line\nsecond-line\n--> Done \(\d+\.\d\ds\)\n", out), out
        assert re.search(r"STEP 3/3: RUN .*\n--> Using cache \(\d+\.\d\ds\)\n", again), again
    else:
        assert re.search(r"\[\+\] Building \d+\.\ds \(3/3\)", out) and re.search(r"=> STEP 3/3: RUN --mount=.* +\d+\.\ds\n", out), out
        assert re.search(r"=> => first-line", out), out  # under the running step, as it came
        assert re.search(r"=> STEP 2/3: ENV K=V +\d+\.\ds", again) and re.search(r"=> CACHED STEP 3/3: RUN .* +\d+\.\ds", again), again
    img = again.strip().splitlines()[-1]
    assert img.startswith("sha256:"), again
    store.ok("rmi", img)
    # A failed step: its state, and its whole output after the display (the error on stderr).
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo bro''ken-output; exit 4\n"})
    out = _watch(store, mode, ctx, rc=1)
    assert "pyc: Dockerfile:2: \"RUN echo bro''ken-output; exit 4\" returned a non-zero code: 4\n" in out, out
    if mode == "tty":
        assert re.search(r"=> ERROR STEP 2/2: RUN echo bro''ken-output; exit 4 +\d+\.\ds\n", out), out
        assert "------\n > STEP 2/2: RUN echo bro''ken-output; exit 4:\n------\nbroken-output\n" in out, out
    else:
        assert "STEP 2/2: RUN echo bro''ken-output; exit 4\nbroken-output\n" in out, out



@pytest.mark.parametrize("mode", ["plain", "tty"])
def test_a_failed_stage_sends_ctrl_c_to_the_running_step_of_another(store: Store, ctx: Path, mode: str) -> None:
    """When one of two stages side by side fails, the other's running RUN gets Ctrl-C, as
    BuildKit cancels the rest of a build (its shell traps it and says so; it would loop for a
    minute else), the build fails with the first failure, and nothing is left of it."""
    mount = f"--mount=type=cache,id=int-{os.urandom(4).hex()},target=/sync"
    run = f"RUN {mount} trap 'echo in''t-a; exit 5' INT; touch /sync/a; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"
    fail = f"RUN {mount} until [ -e /sync/a ]; do sleep 0.1; done; echo fai''led-b; exit 4"  # once a's RUN traps Ctrl-C
    write(ctx, {"Dockerfile": f"FROM busybox AS a\n{run}\nFROM busybox AS b\n{fail}\nFROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n"})
    before = snapshot(store)
    out = _watch(store, mode, ctx, "--no-cache", rc=1)
    assert "int-a\n" in out and "failed-b\n" in out and "pyc: Dockerfile:4: " in out and "returned a non-zero code: 4\n" in out, out
    assert snapshot(store) == before and _leaks(store.root) == []


def test_ctrl_c_reaches_the_running_step_of_each_stage(store: Store, ctx: Path) -> None:
    """Ctrl-C (to pyc build alone) while two stages run side by side: each one's RUN gets it once
    (their shells trap it and say so), the build ends with 130, and no container, layer or image
    is left of it."""
    import signal

    run = "RUN trap 'echo in''t-{0}; exit 5' INT; echo start''ed-{0}; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"
    write(ctx, {"Dockerfile": f"FROM busybox AS a\n{run.format('a')}\nFROM busybox AS b\n{run.format('b')}\nFROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n"})
    before = snapshot(store)
    out = _watch(store, "plain", ctx, "--no-cache", when=([b"started-a", b"started-b"], lambda p: p.send_signal(signal.SIGINT)), rc=130)
    assert out.count("int-a\n") == 1 and out.count("int-b\n") == 1, out
    assert snapshot(store) == before and _leaks(store.root) == []
