"""The image store: an OCI image layout (oci/) that skopeo and umoci read as it is, plus each
layer unpacked once (layers/<chain id>/) and shared by every image and container using it."""
