"""pyc as a client of OCI distribution registries: pull, push, login, logout.

The configuration podman and skopeo use, read from the same places (`config.py`: registries.conf,
certs.d, proxies; `auth.py`: auth.json and docker's config.json), a session per registry that
does the token dance (`session.py`) over pyc_core's Rust transport (no Python loop touches a
blob's bytes), manifests (`manifests.py`), and the two directions (`pull.py`, `push.py`).
Nothing here is imported on the path of `pyc run` with an image already present."""
