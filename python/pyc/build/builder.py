"""`pyc build`: a Dockerfile's stages, only those the target needs, side by side where they can
be (pyc.build.workers). Each stage's state is an image config and its layers; an instruction
changes the config (ENV, CMD, ...) or adds a layer (RUN: the diff of a pyc container's upper
dir; COPY, ADD and WORKDIR: a layer laid out by pyc). Every state has a cache key, its parent's
key and the instruction's inputs hashed; a step that adds a layer looks its key up in the build
cache first and, when found, takes the layer it made last time and runs nothing."""

from __future__ import annotations

import contextlib
import copy as _copy
import hashlib
import json
import os
import stat
import sys
import threading
import time

from pyc.build import progress, remote
from pyc.build.dockerfile import BuildError, Dockerfile, Instruction, Stage
from pyc.build.words import expand
from pyc.errors import InvalidArgument, PycError
from pyc.store import buildcache
from pyc.store.images import Image, chain_ids

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyc.build.context import Context
    from pyc.build.copy import FileDigests
    from pyc.build.mounts import Mounts
    from pyc.build.rootfs import Rootfs
    from pyc.build.workers import Worker
    from pyc.engine import Engine

DEFAULT_SHELL = ["/bin/sh", "-c"]


def _arch() -> str:
    import platform

    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def platform_args() -> dict[str, str]:
    """BuildKit's automatic platform ARGs: the build runs on, and for, this machine."""
    arch = _arch()
    out = {}
    for who in ("TARGET", "BUILD"):
        out.update({f"{who}PLATFORM": f"linux/{arch}", f"{who}OS": "linux", f"{who}ARCH": arch, f"{who}VARIANT": ""})
    return out


class BuildOptions:
    def __init__(
        self,
        tags: list[str] | None = None,
        build_args: dict[str, str] | None = None,
        target: str | None = None,
        no_cache: bool = False,
        quiet: bool = False,
        labels: dict[str, str] | None = None,
        epoch: int | None = None,
        pull: bool = False,
        outputs: list[tuple[str, str]] | None = None,
        secrets: dict[str, str] | None = None,
        network: str | None = None,
        allow: list[str] | None = None,
        progress: str = "plain",
    ) -> None:
        self.tags = tags or []
        self.build_args = build_args or {}
        self.target = target
        self.no_cache = no_cache
        self.quiet = quiet
        self.labels = labels or {}
        self.epoch = epoch  # SOURCE_DATE_EPOCH: every time in the image clamped to it
        self.pull = pull  # FROM asks the registry for a newer image even when the store has one
        self.secrets = secrets or {}  # --secret id=ID,src=FILE: what RUN --mount=type=secret mounts
        self.outputs = outputs or []  # --output: (local or tar, where), the image's files written out
        self.network = network  # --network: RUN steps' network (None: pyc run's default, default_network())
        self.allow = allow or []  # --allow: BuildKit's entitlements (network.host: RUN --network=host)
        self.progress = progress  # plain, tty, auto or quiet (pyc.build.progress)


class State:
    """A stage's image so far: its config, its layers (diff id, size) and its cache key."""

    __slots__ = ("config", "layers", "key", "shell", "args")

    def __init__(self, config: dict[str, Any], layers: list[tuple[str, int]], key: str) -> None:
        self.config, self.layers, self.key = config, layers, key
        self.shell = list(DEFAULT_SHELL)
        self.args: dict[str, str | None] = {}  # the stage's ARGs: None when declared without a value

    @property
    def run(self) -> dict[str, Any]:
        cfg: dict[str, Any] = self.config.setdefault("config", {})
        return cfg

    @property
    def diff_ids(self) -> list[str]:
        return [d for d, _ in self.layers]

    def env(self) -> dict[str, str]:
        out = {}
        for item in self.run.get("Env") or []:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out

    def words_env(self) -> dict[str, str]:
        """What `$VAR` expands to: the ARGs with values, the ENVs over them."""
        return {**{k: v for k, v in self.args.items() if v is not None}, **self.env()}

    def image(self) -> Image:
        """An Image of this state, for a container to run on (it is in no index)."""
        config = {**self.config, "rootfs": {"type": "layers", "diff_ids": self.diff_ids}}
        data = json.dumps(config, sort_keys=True).encode()
        manifest = {"config": {"digest": "sha256:" + hashlib.sha256(data).hexdigest()}, "layers": [{"digest": d, "size": s} for d, s in self.layers]}
        return Image("", manifest, config, [])

    def step(self, what: object) -> None:
        self.key = _hash(self.key, what)


def _hash(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Builder:
    def __init__(self, engine: Engine, df: Dockerfile, ctx: Context, opts: BuildOptions) -> None:
        from pyc.build.copy import FileDigests

        self.engine, self.df, self.ctx, self.opts = engine, df, ctx, opts
        self._local = threading.local()  # the step under way (dispatch), for its RUN's output
        self.store = engine.images
        self.built: dict[int, State] = {}
        self.used_args: set[str] = set()
        self.progress = progress.Plain(quiet=True)  # build() sets the one opts.progress names
        self.digests: FileDigests = FileDigests(buildcache.load_files(self.store))
        self.global_env = self._global_args()
        self.downloads: set[str] = set()  # the files of ADD's URLs, in scratch()
        self.late: dict[str, tuple[str, str]] = {}  # of those, the ones to download if their step runs: (url, checksum)
        self._scratch: str | None = None
        self._exit = contextlib.ExitStack()

    # -- output ---------------------------------------------------------------------------

    def now(self) -> str:
        t = self.opts.epoch if self.opts.epoch is not None else time.time()
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    # -- stages ---------------------------------------------------------------------------

    def _global_args(self) -> dict[str, str]:
        env = platform_args()
        for ins in self.df.global_args:
            for name, default in _arg_words(ins):
                if name in self.opts.build_args:
                    env[name] = self.opts.build_args[name]
                    self.used_args.add(name)
                elif default is not None:
                    env[name] = _expand(ins, default, env)
        return env

    def target(self) -> Stage:
        if self.opts.target is None:
            return self.df.stages[-1]
        stage = self.df.stage(self.opts.target)
        if stage is None:
            raise InvalidArgument(f"{self.df.file}: no stage named {self.opts.target!r} (the target of --target)")
        return stage

    def deps(self, s: Stage) -> set[int]:
        """The earlier stages `s` is built on (FROM), copies from (COPY --from) or binds
        (RUN --mount=type=bind,from=)."""
        out = set()
        base = self.df.stage(_expand(s.line, s.base, self.global_env))
        if base is not None and base.index < s.index:
            out.add(base.index)
        for ins in s.instructions:
            refs = [ins.flag("from")] if ins.cmd == "COPY" else []
            if ins.cmd == "RUN":
                refs += [f.split("=", 1)[1] for m in ins.flags.get("mount", []) for f in m.split(",") if f.startswith("from=")]
            for ref in refs:
                dep = self.df.stage(ref) if ref is not None else None
                if dep is not None:
                    if dep.index >= s.index:
                        raise ins.error(f"{ins.cmd} --from={ref}: a stage can only use an earlier one")
                    out.add(dep.index)
        return out

    def needs(self, stage: Stage) -> list[Stage]:
        """The stages `stage` depends on and itself, in the order of the file."""
        want: set[int] = set()
        todo = [stage]
        while todo:
            s = todo.pop()
            if s.index not in want:
                want.add(s.index)
                todo += [self.df.stages[i] for i in self.deps(s)]
        return [s for s in self.df.stages if s.index in want]

    def run_stages(self, stages: list[Stage]) -> None:
        """Each stage once those it needs are built. A stage that is the only one that can run
        runs here; stages that can run at once run side by side, each in a worker process
        (pyc.build.workers). When one fails, the others get Ctrl-C (their running RUN, or their
        next step); the first failure is the build's, once every worker has ended."""
        deps = {s.index: self.deps(s) for s in stages}
        pending = list(stages)
        running: list[Worker] = []
        failure: BaseException | None = None
        try:
            while pending or running:
                ready = [s for s in pending if deps[s.index] <= self.built.keys()] if failure is None else []
                pending = [s for s in pending if s not in ready] if failure is None else []
                if len(ready) == 1 and not running:
                    self.built[ready[0].index] = self.run_stage(ready[0])
                    continue
                if not ready and not running:
                    break
                from pyc.build import workers  # a build of one stage at a time needs none (socket's import)

                for s in ready:
                    running.append(workers.start(self, s, running))
                w, got = workers.wait(running, self.progress)
                running.remove(w)
                if isinstance(got, BaseException):
                    if failure is None:
                        failure = got
                        workers.interrupt(running)
                    continue
                self.built[w.stage.index] = got
                self.used_args.update(w.used_args)
                if w.digests:
                    self.digests.known.update(w.digests)
                    self.digests.changed = True
        except BaseException:
            if not running:
                raise
            from pyc.build import workers

            workers.interrupt(running)
            while running:  # their containers ended and removed before the build says why it failed
                running.remove(workers.wait(running, self.progress)[0])
            raise
        if failure is not None:
            raise failure

    def build(self) -> Image:
        with self._exit:
            self.progress = progress.make("quiet" if self.opts.quiet else self.opts.progress)
            self._exit.callback(self.progress.close)
            return self._build()

    def _build(self) -> Image:
        target = self.target()
        net = self.opts.network
        if net is not None and net not in ("none", "host"):
            if net.startswith("container:"):
                raise InvalidArgument(f"--network {net}: a build's steps take none, host or a network's name")
            self.engine.network(net)  # a network that is not there fails before any step runs
        self.run_stages(self.needs(target))
        if self.digests.changed:
            buildcache.save_files(self.store, self.digests.known)
        unused = sorted(set(self.opts.build_args) - self.used_args)
        if unused:
            sys.stderr.write(f"pyc: warning: build args not consumed by any stage: {', '.join(unused)}\n")
        return self.finish(self.built[target.index])

    def finish(self, st: State) -> Image:
        config = st.config
        if self.opts.labels:
            st.run["Labels"] = {**(st.run.get("Labels") or {}), **self.opts.labels}
        config["rootfs"] = {"type": "layers", "diff_ids": st.diff_ids}
        history = config.get("history") or []
        config["created"] = history[-1]["created"] if history and history[-1].get("created") else self.now()
        tags: list[str | None] = [*self.opts.tags] or [None]
        img: Image | None = None
        from pyc.store import kept

        # A base layer the store keeps only as pulled is named by that blob (kept.py).
        layers = [kept.find(self.store, d) or (d, s) for d, s in st.layers]
        for tag in tags:
            img = self.store.add(config, layers, tag)
        assert img is not None
        from pyc.build import output

        for kind, dest in self.opts.outputs:
            output.write(self.store, img, kind, dest)
        return img

    def base(self, stage: Stage) -> State:
        name = _expand(stage.line, stage.base, self.global_env)
        platform = stage.line.flag("platform")
        if platform is not None:
            wanted = _expand(stage.line, platform, self.global_env)
            if wanted not in (f"linux/{_arch()}", self.global_env["TARGETPLATFORM"]):
                raise stage.line.error(f"FROM --platform={wanted}: pyc builds for this machine only (linux/{_arch()})")
        if name == "scratch":
            config = {"architecture": _arch(), "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            return State(config, [], _hash("scratch"))
        dep = self.df.stage(name)
        if dep is not None and dep.index < stage.index:
            prev = self.built[dep.index]
            st = State(_copy.deepcopy(prev.config), list(prev.layers), prev.key)
            st.shell = list(prev.shell)
            return st
        try:
            img = self.engine.image_for_run(name, "always" if self.opts.pull else "missing")
        except PycError as e:
            raise type(e)(f"{stage.line.file}:{stage.line.line}: {e}", e.kind, e.errno) from None
        diff_ids = img.diff_ids
        if len(diff_ids) != len(img.layers):
            raise stage.line.error(f"image {name} has {len(img.layers)} layers but {len(diff_ids)} diff ids")
        from pyc.store import kept

        layers = []
        for diff_id in diff_ids:
            # The new image names its base's layers as the store keeps them: their tars, or
            # the blobs kept as pulled (kept.py). An image another tool wrote into the layout
            # may have compressed blobs pyc knows nothing of.
            found = kept.find(self.store, diff_id)
            if found is None:
                raise stage.line.error(f"image {name}: its layer {diff_id[7:19]} is stored compressed only (written by another tool): pyc save | pyc load it first")
            layers.append((diff_id, found[1] if isinstance(found, tuple) else kept.tar_size(found)))
        config = _copy.deepcopy(img.config)
        config.setdefault("history", [])
        return State(config, layers, img.id)

    def run_stage(self, stage: Stage) -> State:
        n = len(stage.instructions) + 1
        label = f"[{stage.index + 1}/{len(self.df.stages)}] " if len(self.df.stages) > 1 else ""
        step = self.progress.step(f"{label}STEP 1/{n}: {stage.line.text}")
        try:
            st = self.base(stage)
        except BaseException:
            self.progress.failed(step)
            raise
        self.progress.done(step, None)
        triggers = list(st.run.get("OnBuild") or [])
        if triggers:
            st.run["OnBuild"] = None
        for text in triggers:
            self.onbuild(st, text, stage.line)
        for k, ins in enumerate(stage.instructions, 2):
            self.dispatch(st, ins, f"{label}STEP {k}/{n}: {ins.text.splitlines()[0] if ins.text else ins.cmd}")
        return st

    def onbuild(self, st: State, text: str, at: Instruction) -> None:
        from pyc.build.dockerfile import _instruction, commands

        try:
            parsed = commands(text, at.file)
        except BuildError as e:
            raise at.error(f"ONBUILD trigger {text!r} of the base image: {e}") from None
        for c in parsed:
            ins = _instruction(c, at.file)
            ins.line = at.line
            self.dispatch(st, ins, f"--> ONBUILD {ins.text}")

    # -- instructions ---------------------------------------------------------------------

    def dispatch(self, st: State, ins: Instruction, label: str) -> None:
        step = self._local.step = self.progress.step(label)
        handler = getattr(self, "do_" + ins.cmd.lower())
        try:
            cached = handler(st, ins)
        except BaseException as e:
            self.progress.failed(step)
            if isinstance(e, BuildError) or not isinstance(e, PycError):
                raise
            if isinstance(e, InvalidArgument):
                raise ins.error(str(e)) from None
            # a RUN whose command cannot start, a missing image: where, too
            raise type(e)(f"{ins.file}:{ins.line}: {e}", e.kind, e.errno) from None
        self.progress.done(step, cached)

    def history(self, st: State, ins: Instruction, created_by: str, empty: bool, created: str | None = None) -> None:
        entry: dict[str, Any] = {"created": created or st.config.get("created") or self.now(), "created_by": created_by}
        if empty:
            entry["empty_layer"] = True
        st.config.setdefault("history", []).append(entry)
        st.config["created"] = entry["created"]

    def config_step(self, st: State, ins: Instruction, created_by: str, effect: object) -> None:
        st.step([ins.cmd, effect])
        self.history(st, ins, created_by, True)

    def words(self, st: State, ins: Instruction, word: str, env: dict[str, str] | None = None) -> str:
        used: set[str] = set()
        out = _expand(ins, word, st.words_env() if env is None else env, used)
        self.used_args.update(used)
        return out

    def do_arg(self, st: State, ins: Instruction) -> None:
        for name, default in _arg_words(ins):
            if name in self.opts.build_args:
                value: str | None = self.opts.build_args[name]
                self.used_args.add(name)
            elif default is not None:
                value = self.words(st, ins, default)
            else:
                value = self.global_env.get(name)
            # Not in the key: the RUNs after it have it in theirs (their environment), and
            # what expands it has the value in its text; a COPY after it stays cached.
            st.args[name] = value

    def do_env(self, st: State, ins: Instruction) -> None:
        pairs = _pairs(ins)
        env = list(st.run.get("Env") or [])
        before = st.words_env()  # ENV a=1 b=$a: b gets the a of before this line, as docker
        for k, v in pairs:
            key, value = self.words(st, ins, k, before), self.words(st, ins, v, before)
            env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            st.run["Env"] = env
        self.config_step(st, ins, f"ENV {' '.join(e for e in env[-len(pairs):])}", env)

    def do_label(self, st: State, ins: Instruction) -> None:
        labels = dict(st.run.get("Labels") or {})
        for k, v in _pairs(ins):
            labels[self.words(st, ins, k)] = self.words(st, ins, v)
        st.run["Labels"] = labels
        self.config_step(st, ins, ins.text, labels)

    def do_maintainer(self, st: State, ins: Instruction) -> None:
        st.config["author"] = " ".join(ins.args)
        self.config_step(st, ins, ins.text, st.config["author"])

    def do_user(self, st: State, ins: Instruction) -> None:
        st.run["User"] = self.words(st, ins, ins.args[0])
        self.config_step(st, ins, f"USER {st.run['User']}", st.run["User"])

    def do_stopsignal(self, st: State, ins: Instruction) -> None:
        sig = self.words(st, ins, ins.args[0])
        if not (sig.isdigit() or sig.upper().removeprefix("SIG").isalnum()):
            raise ins.error(f"invalid STOPSIGNAL {sig!r}")
        st.run["StopSignal"] = sig
        self.config_step(st, ins, f"STOPSIGNAL {sig}", sig)

    def do_expose(self, st: State, ins: Instruction) -> None:
        ports = dict(st.run.get("ExposedPorts") or {})
        for word in ins.args:
            for p in self.words(st, ins, word).split():
                num, _, proto = p.partition("/")
                lo, _, hi = num.partition("-")
                if not lo.isdigit() or not 0 < int(lo) < 65536 or (hi and (not hi.isdigit() or int(hi) < int(lo) or int(hi) > 65535)) or proto not in ("", "tcp", "udp", "sctp"):
                    raise ins.error(f"invalid port {p!r}: use PORT[-PORT][/tcp|udp|sctp]")
                ports[f"{num}/{proto or 'tcp'}"] = {}
        st.run["ExposedPorts"] = ports
        self.config_step(st, ins, ins.text, ports)

    def do_volume(self, st: State, ins: Instruction) -> None:
        vols = dict(st.run.get("Volumes") or {})
        for word in ins.args:
            path = self.words(st, ins, word) if not ins.json else word
            if not path:
                raise ins.error("VOLUME needs a path")
            vols[path] = {}
        st.run["Volumes"] = vols
        self.config_step(st, ins, ins.text, vols)

    def command(self, st: State, ins: Instruction) -> list[str]:
        if ins.json:
            return list(ins.args)
        return [*st.shell, " ".join(ins.args)] if ins.args else []

    def do_cmd(self, st: State, ins: Instruction) -> None:
        st.run["Cmd"] = self.command(st, ins)
        self.config_step(st, ins, f"CMD {json.dumps(st.run['Cmd'])}", st.run["Cmd"])

    def do_entrypoint(self, st: State, ins: Instruction) -> None:
        st.run["Entrypoint"] = self.command(st, ins)
        st.run["Cmd"] = None  # docker's rule: a new entrypoint drops the base image's command
        self.config_step(st, ins, f"ENTRYPOINT {json.dumps(st.run['Entrypoint'])}", st.run["Entrypoint"])

    def do_shell(self, st: State, ins: Instruction) -> None:
        st.shell = list(ins.args)
        self.config_step(st, ins, ins.text, st.shell)

    def do_onbuild(self, st: State, ins: Instruction) -> None:
        st.run["OnBuild"] = [*(st.run.get("OnBuild") or []), ins.args[0]]
        self.config_step(st, ins, ins.text, st.run["OnBuild"])

    def do_healthcheck(self, st: State, ins: Instruction) -> None:
        first = ins.args[0].upper()
        if first == "NONE":
            if len(ins.args) > 1 or ins.flags:
                raise ins.error("HEALTHCHECK NONE takes nothing else")
            check: dict[str, Any] = {"Test": ["NONE"]}
        elif first == "CMD":
            rest = ins.args[1:]
            if not rest:
                raise ins.error("HEALTHCHECK CMD needs a command")
            check = {"Test": ["CMD", *rest] if ins.json else ["CMD-SHELL", " ".join(rest)]}
            for name, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
                value = ins.flag(name)
                if value is not None:
                    check[key] = _duration(ins, name, value)
            retries = ins.flag("retries")
            if retries is not None:
                if not retries.isdigit():
                    raise ins.error(f"--retries={retries}: not a number")
                check["Retries"] = int(retries)
        else:
            raise ins.error("HEALTHCHECK takes CMD command or NONE")
        st.run["Healthcheck"] = check
        self.config_step(st, ins, ins.text, check)

    def do_workdir(self, st: State, ins: Instruction) -> bool | None:
        path = self.words(st, ins, ins.args[0])
        if not path.startswith("/"):
            path = os.path.join(st.run.get("WorkingDir") or "/", path)
        path = os.path.normpath(path)
        st.run["WorkingDir"] = path
        from pyc.build.copy import Stager
        from pyc.build.rootfs import Rootfs

        fs = Rootfs(self.lowers(st))
        rel = fs.resolve(path.strip("/")) if st.layers else path.strip("/")
        if not rel or (st.layers and fs.find(rel) is not None):
            self.config_step(st, ins, f"WORKDIR {path}", path)
            return None

        def lay_out(stage_dir: str) -> None:
            stager = Stager(stage_dir, fs, None, None, self.opts.epoch)
            stager.parents(rel)
            stager.finish()

        return self.layer_step(st, ins, f"WORKDIR {path}", ["WORKDIR", path], lay_out)

    def do_run(self, st: State, ins: Instruction) -> bool:
        if ins.json:
            argv = list(ins.args)
        elif ins.heredocs and len(ins.args) == 1 and ins.args[0].lstrip("<-").strip("'\"") == ins.heredocs[0][0]:
            argv = [*st.shell, ins.heredocs[0][1]]  # RUN <<EOF: the document is the script
        else:
            text = " ".join(ins.args)
            for name, content in ins.heredocs:
                text += f"\n{content}{name}"
            argv = [*st.shell, text]
        network = self.run_network(st, ins)
        env = st.env()
        args = {k: v for k, v in st.args.items() if v is not None and k not in env}
        self.used_args.update(args)
        from pyc.build import mounts

        specs = [self.words(st, ins, m) for m in ins.flags.get("mount", [])]
        mnt = mounts.resolve(specs, self.ctx, self.store, self.opts.secrets, self.digests, self.rootfs_of)
        created_by = f"RUN {' '.join(argv)}"
        inputs = ["RUN", argv, sorted(args.items()), mnt.key] + ([network] if network != "none" else [])
        return self.layer_step(st, ins, created_by, inputs, None, argv, args, mnt, network)

    def run_network(self, st: State, ins: Instruction) -> str:
        """The network a RUN step is on: its --network (BuildKit's default, none or host), the
        build's (`pyc build --network`) for default, else pyc run's default network. A host
        network comes from the Dockerfile only with the network.host entitlement (--allow), as
        in BuildKit: a Dockerfile is not to put its steps on the host's network unasked."""
        from pyc.network import default_network

        wanted = self.words(st, ins, ins.flag("network") or "default")
        if wanted not in ("default", "none", "host"):
            raise ins.error(f"RUN --network={wanted}: use default, none or host")
        if wanted == "host" and self.opts.network != "host" and "network.host" not in self.opts.allow:
            raise ins.error("RUN --network=host needs the network.host entitlement: pyc build --allow network.host")
        return wanted if wanted != "default" else self.opts.network or default_network()

    def do_copy(self, st: State, ins: Instruction) -> bool:
        return self.copy(st, ins, add=False)

    def do_add(self, st: State, ins: Instruction) -> bool:
        return self.copy(st, ins, add=True)

    def copy(self, st: State, ins: Instruction, add: bool) -> bool:
        from pyc.build import copy

        if ins.heredocs:
            return self.copy_heredocs(st, ins)
        words = [self.words(st, ins, w) if not ins.json else w for w in ins.args]
        srcs, dest = words[:-1], words[-1]
        where = ins.error
        ref = ins.flag("from")
        if ref is not None:
            ref = self.words(st, ins, ref)
            from_fs, of = self.rootfs_of(ref)
            groups = copy.from_rootfs(from_fs, srcs, where)
            origin: object = ["from", ref, of]
        else:
            urls = [s for s in srcs if remote.is_url(s)] if add else []
            if ins.flag("checksum") is not None and not urls:
                raise ins.error("ADD --checksum is for a URL source")
            groups = copy.from_context(self.ctx, [s for s in srcs if s not in urls], where) if len(urls) < len(srcs) else []
            origin = ["context", self.fetch(ins, urls, groups, len(srcs))] if urls else "context"
        link, fs, owner = self.copy_target(st, ins)
        on_base = bool(st.layers) and not link  # --link reads nothing of the image below
        chmod = _chmod(ins)
        workdir = st.run.get("WorkingDir") or "/"
        into_dir = dest.endswith("/") or len(groups) > 1 or dest in (".", "")
        dest_path = os.path.normpath(os.path.join(workdir, dest)).strip("/")
        if not into_dir and len(groups) == 1 and len(groups[0][1]) == 1 and not stat.S_ISDIR(groups[0][1][0].st.st_mode):
            found = fs.find(fs.resolve(dest_path)) if dest_path and on_base else None
            into_dir = found is not None and stat.S_ISDIR(found[1].st_mode)
        sum_ = copy.checksum([g for g in groups if g[1][0].real not in self.downloads], self.digests)
        inputs = [ins.cmd, origin, srcs, dest_path, into_dir, ins.flag("chown"), owner, chmod, sum_, add, link]
        created_by = f"{ins.cmd} {' '.join(srcs)} {dest}"

        def lay_out(stage_dir: str) -> None:
            self.fetch_late(groups)
            stager = copy.Stager(stage_dir, fs, owner, chmod, self.opts.epoch)
            for base, items in groups:
                if len(items) == 1 and not stat.S_ISDIR(items[0].st.st_mode):
                    target = f"{dest_path}/{base}".strip("/") if into_dir else dest_path
                    parent = fs.resolve(os.path.dirname(target)) if on_base else os.path.dirname(target)
                    stager.parents(parent)
                    name = f"{parent}/{os.path.basename(target)}".strip("/")
                    if add and ref is None and items[0].real not in self.downloads and _is_archive(items[0].real):
                        self.unpack_archive(items[0].real, stage_dir, parent if into_dir else name)
                        continue
                    stager.put(items[0], name)
                    continue
                root = fs.resolve(dest_path) if on_base else dest_path
                stager.parents(root)
                for item in items:
                    if item.rel:
                        stager.put(item, f"{root}/{item.rel}".strip("/"))
            stager.finish()

        return self.layer_step(st, ins, created_by, inputs, lay_out, link=link)

    def rootfs_of(self, ref: str) -> tuple[Rootfs, object]:
        """The files of a built stage or an image (COPY --from, RUN --mount=type=bind,from=) and
        what stands for them in a key: the stage's key, the image's layers."""
        from pyc.build.rootfs import Rootfs
        from pyc.store.layers import lower_dirs

        dep = self.df.stage(ref)
        if dep is not None and dep.index in self.built:
            st = self.built[dep.index]
            return Rootfs(self.lowers(st)), st.key
        fs = Rootfs(lower_dirs(self.store, self.engine.image_for_run(ref)))
        return fs, fs.layers

    def copy_target(self, st: State, ins: Instruction) -> tuple[bool, Rootfs, tuple[int, int] | None]:
        """Whether a COPY or ADD is --link, the image its files are laid out on (for --link an
        empty one, as BuildKit copies onto scratch: new parents 0755, no symlink of the image
        below followed, so the layer and its key do not depend on that image), and --chown's
        owner (a name looked up in the image below, for --link too)."""
        from pyc.build.rootfs import Rootfs

        link = (ins.flag("link") or "false") != "false"
        below = Rootfs(self.lowers(st))
        chown = self.words(st, ins, ins.flag("chown") or "") or None
        owner = None
        if chown is not None:
            from pyc.runtime.spec import parse_user

            owner = parse_user(chown, below.layers)
        return link, Rootfs([]) if link else below, owner

    def fetch(self, ins: Instruction, urls: list[str], groups: list[tuple[str, list[Any]]], nsrcs: int) -> list[tuple[str, str]]:
        """ADD's URLs downloaded into the build's scratch dir, appended to `groups` as sources
        to copy; (url, sha256) of each, for the step's key. With --checksum the key is known
        without the file, which is downloaded only if the step runs (`fetch_late`), as BuildKit
        does: a cached step asks nothing of the server."""
        from pyc.build.copy import Source

        checksum = ins.flag("checksum")
        if checksum is not None:
            checksum = remote.parse_checksum(checksum)
            if nsrcs != 1:
                raise ins.error("ADD --checksum takes a single URL source")
        out = []
        for url in urls:
            name = remote.file_name(url)
            path = os.path.join(self.scratch(), f"{len(self.downloads)}-{name}")
            self.downloads.add(path)
            if checksum is not None:
                out.append((url, checksum))
                self.late[path] = (url, checksum)
                groups.append((name, [Source(path, "", os.stat_result((stat.S_IFREG | 0o600, 0, 0, 1, 0, 0, 0, 0, 0, 0)), False)]))
                continue
            out.append((url, remote.fetch(url, path, None, os.path.join(buildcache.directory(self.store), "urls"))))
            groups.append((name, [Source(path, "", os.lstat(path), False)]))
        return out

    def fetch_late(self, groups: list[tuple[str, list[Any]]]) -> None:
        """The downloads `fetch` left for when the step runs, made; their sources' lstat now."""
        for _, items in groups:
            late = self.late.pop(items[0].real, None)
            if late is not None:
                remote.fetch(late[0], items[0].real, late[1])
                items[0].st = os.lstat(items[0].real)

    def scratch(self) -> str:
        """A temp dir of the store for the build's whole run (downloads), removed at its end."""
        if self._scratch is None:
            from pyc.store.ingest import temp_dir

            self._scratch = self._exit.enter_context(temp_dir(self.store))
        return self._scratch

    def copy_heredocs(self, st: State, ins: Instruction) -> bool:
        """`COPY <<EOF /dest` and the document: a file of that content (0644, root's or
        --chown's), named by the destination or, into a directory, by the document's name."""
        from pyc.build import copy

        docs = dict(ins.heredocs)
        srcs, dest = ins.args[:-1], self.words(st, ins, ins.args[-1])
        names = [s.lstrip("<-").strip("'\"") for s in srcs]
        if any(n not in docs for n in names) or ins.flag("from") is not None:
            raise ins.error(f"{ins.cmd}: give either here-documents or files as sources, not both (nor --from with them)")
        link, fs, owner = self.copy_target(st, ins)
        on_base = bool(st.layers) and not link
        chmod = _chmod(ins)
        dest_path = os.path.normpath(os.path.join(st.run.get("WorkingDir") or "/", dest)).strip("/")
        into_dir = dest.endswith("/") or len(names) > 1
        inputs = [ins.cmd, "heredoc", [(n, docs[n]) for n in names], dest_path, into_dir, ins.flag("chown"), owner, chmod, link]

        def lay_out(stage_dir: str) -> None:
            stager = copy.Stager(stage_dir, fs, owner, chmod, self.opts.epoch)
            for n in names:
                target = f"{dest_path}/{n}".strip("/") if into_dir else dest_path
                parent = fs.resolve(os.path.dirname(target)) if on_base else os.path.dirname(target)
                stager.parents(parent)
                stager.write(f"{parent}/{os.path.basename(target)}".strip("/"), docs[n].encode())
            stager.finish()

        return self.layer_step(st, ins, f"{ins.cmd} {' '.join(srcs)} {dest}", inputs, lay_out, link=link)

    def unpack_archive(self, src: str, stage_dir: str, target: str) -> None:
        """ADD of a local tar (plain, gzip or zstd): its files, owners and modes as they are,
        into the destination directory."""
        import pyc_core

        dest = os.path.join(stage_dir, target)
        os.makedirs(dest, exist_ok=True)
        try:
            pyc_core.unpack_layer(src, dest)
        except pyc_core.ArchiveError as e:
            raise InvalidArgument(f"ADD {os.path.basename(src)}: {e}") from None
        for dirpath, dirnames, filenames in os.walk(dest):
            for name in dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    raise InvalidArgument(f"ADD {os.path.basename(src)}: the archive holds whiteout entries (.wh. names), which ADD does not take")

    # -- layers ---------------------------------------------------------------------------

    def lowers(self, st: State) -> list[str]:
        from pyc.store.layers import lower_dirs

        return lower_dirs(self.store, st.image()) if st.layers else []

    def layer_step(
        self,
        st: State,
        ins: Instruction,
        created_by: str,
        inputs: object,
        lay_out: Any,
        argv: list[str] | None = None,
        args: dict[str, str] | None = None,
        mnt: Mounts | None = None,
        network: str = "none",
        link: bool = False,
    ) -> bool:
        """A step that makes a layer: from the cache when its key is there (True), else made
        (by `lay_out(stage_dir)`, or by running `argv` in a container) and cached (False). A
        --link layer's key is its inputs' alone: the layer is reused on any image below."""
        key = _hash("link", inputs) if link else _hash(st.key, inputs)
        entry = None if self.opts.no_cache else buildcache.get(self.store, key, any_base=link)
        cached = entry is not None
        if entry is None:
            entry = self.make_layer(st, ins, key, lay_out, argv, args, mnt, network)
        if entry.diff_id is not None:
            st.layers.append((entry.diff_id, entry.size))
        self.history(st, ins, created_by, entry.diff_id is None, entry.created if self.opts.epoch is None else self.now())
        st.key = _hash(st.key, key) if link else key
        return cached

    def make_layer(
        self, st: State, ins: Instruction, key: str, lay_out: Any, argv: list[str] | None, args: dict[str, str] | None, mnt: Mounts | None = None, network: str = "none"
    ) -> buildcache.Entry:
        """The step's layer, made in a batch of the store's one ingest path and recorded in the
        cache in the same hold of the store lock that makes it visible."""
        import pyc_core
        from pyc.paths import digest_hex
        from pyc.store.ingest import Ingest

        with Ingest(self.store) as ingest:
            if argv is not None:
                src = self.run_step(st, ins, argv, args or {}, ingest.tmp, mnt, network)
            else:
                src = os.path.join(ingest.tmp, "stage")
                os.mkdir(src)
                lay_out(src)
            if not os.listdir(src):
                entry = buildcache.Entry(None, 0, None, self.now())
                with self.store.lock():
                    buildcache.put(self.store, key, entry)
                return entry
            if self.opts.epoch is not None and argv is not None:
                _clamp_times(src, self.opts.epoch)
            blob = os.path.join(ingest.tmp, "layer.tar")
            diff_id, size = pyc_core.tar_upper(src, blob) if argv is not None else pyc_core.tar_directory(src, blob)
            layer = ingest.add(blob, digest_hex(diff_id)[:12], diff_id=diff_id, below=chain_ids(st.diff_ids)[::-1], tar=blob)
            entry = buildcache.Entry(diff_id, size, layer.chain, self.now())
            with self.store.lock():
                ingest.commit()
                buildcache.put(self.store, key, entry)
        return entry

    def run_step(self, st: State, ins: Instruction, argv: list[str], args: dict[str, str], tmp: str, mnt: Mounts | None = None, network: str = "none") -> str:
        """Run `argv` in a container on the state; its upper dir, moved into `tmp`."""
        from pyc.runtime.spec import RunOptions

        if not st.layers:
            raise ins.error("RUN on an empty image (FROM scratch with no files): there is no shell to run")
        if mnt is not None:
            mnt.stage(tmp)
        opts = RunOptions(
            argv,
            entrypoint="",
            env=[f"{k}={v}" for k, v in args.items()],
            workdir=st.run.get("WorkingDir") or None,
            user=st.run.get("User") or None,
            remove=True,
            network=network,
            volumes=mnt.volumes if mnt else None,
            tmpfs=mnt.tmpfs if mnt else None,
        )
        upper = os.path.join(tmp, "upper")

        def keep(upper_dir: str) -> None:
            os.rename(upper_dir, upper)

        out, finish = self.progress.output(self._local.step)
        try:
            r = self.engine.run(st.image(), opts, None, out, out, keep_upper=keep)
        finally:
            finish()
        if r.status == 0:
            from pyc.build.rootfs import Rootfs
            from pyc.runtime.spec import BASE_MOUNTS

            dests = [m["destination"] for m in BASE_MOUNTS] + [f"/etc/{n}" for n in ("hostname", "hosts", "resolv.conf")] + (mnt.targets if mnt else [])
            _drop_mount_points(upper, Rootfs(self.lowers(st)), dests)
        if r.status != 0:
            shown = ""
            output = (r.stdout or b"") + (r.stderr or b"")
            if self.opts.quiet and output.strip():
                # -q printed nothing as it ran: the output's last lines, on the error's one line
                shown = ": " + output.decode(errors="replace").strip().replace("\n", " | ")[-2000:]
            raise ins.error(f"{ins.text.splitlines()[0]!r} returned a non-zero code: {r.status}{shown}")
        return upper


def _drop_mount_points(upper: str, image: Rootfs, dests: list[str]) -> None:
    """What the container's start made in its upper dir for its mounts (/proc, /etc/hosts, a
    --mount's target, ... where the image has none): empty, and not the step's to keep. Their
    parents too, as far as they are left empty: made for them, or copied up from the image
    with nothing changed but their mtime."""
    from pyc.build.rootfs import opaque

    for dest in sorted(dests, key=lambda d: d.count("/"), reverse=True):
        rel = dest.strip("/")
        while rel:
            path = os.path.join(upper, rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                break
            found = image.find(rel)
            if found is None and stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(path)
            elif not stat.S_ISDIR(st.st_mode) or os.listdir(path) or opaque(path):
                break
            elif found is None or (stat.S_ISDIR(found[1].st_mode) and (found[1].st_mode, found[1].st_uid, found[1].st_gid) == (st.st_mode, st.st_uid, st.st_gid)):
                os.rmdir(path)
            else:
                break
            rel = os.path.dirname(rel)


def _is_archive(path: str) -> bool:
    """A tar, maybe gzip or zstd compressed: what ADD unpacks."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b" or head[:4] == b"\x28\xb5\x2f\xfd":
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def _clamp_times(tree: str, epoch: int) -> None:
    """Every mtime in `tree` at most `epoch` (SOURCE_DATE_EPOCH), children before parents."""
    limit = epoch * 10**9
    for dirpath, dirnames, filenames in os.walk(tree, topdown=False):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if st.st_mtime_ns > limit:
                os.utime(path, ns=(limit, limit), follow_symlinks=False)


def _expand(ins: Instruction, word: str, env: dict[str, str], used: set[str] | None = None) -> str:
    try:
        return expand(word, env, used, ins.escape)
    except InvalidArgument as e:
        raise ins.error(str(e)) from None


def _arg_words(ins: Instruction) -> list[tuple[str, str | None]]:
    out = []
    for word in ins.args:
        name, eq, default = word.partition("=")
        if not name or not all(c.isalnum() or c == "_" for c in name):
            raise ins.error(f"invalid ARG name {name!r}")
        out.append((name, default if eq else None))
    return out


def _chmod(ins: Instruction) -> int | None:
    text = ins.flag("chmod")
    if text is None:
        return None
    if not text or any(c not in "01234567" for c in text) or int(text, 8) > 0o7777:
        raise ins.error(f"invalid --chmod={text}: use an octal mode like 0644")
    return int(text, 8)


def _pairs(ins: Instruction) -> list[tuple[str, str]]:
    if len(ins.args) % 2:
        raise ins.error(f"{ins.cmd} takes KEY=VALUE pairs")
    return [(ins.args[i], ins.args[i + 1]) for i in range(0, len(ins.args), 2)]


def _duration(ins: Instruction, name: str, value: str) -> int:
    """Go's duration (1m30s, 500ms, 5s) in nanoseconds."""
    import re

    units = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", value)
    if not parts or "".join(a + b for a, b in parts) != value:
        raise ins.error(f"--{name}={value}: not a duration (like 30s, 1m30s)")
    return int(sum(float(a) * units[b] for a, b in parts))
