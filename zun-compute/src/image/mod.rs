//! Images: resolves, pulls, stores and unpacks images through containerd, and mounts a container's rootfs (see docs/runtime.md).
