#!/usr/bin/python3
"""Build OCI images from this host's files and push them to a registry (HTTP API v2).

    build-image.py [--registry 127.0.0.1:5100] [--images-dir DIR] [--no-push]
                   [--archive NAME ...] IMAGE...

IMAGE is one of:
  busybox  library/busybox:latest  /bin/busybox (Debian busybox-static) and a symlink per applet
           in /bin, /etc/passwd and /etc/group (root, nobody), /tmp, /root, placeholders for
           /proc /sys /dev /etc/hostname /etc/hosts /etc/resolv.conf. Cmd ["sh"].
  nginx    library/nginx:latest  the busybox layer, plus Debian's nginx with every shared library
           ldd lists and the dynamic loader, a minimal nginx.conf (port 80, logs on
           stdout/stderr, workers as nobody), a welcome page.
           Entrypoint ["nginx", "-g", "daemon off;"], port 80/tcp.

Layers are deterministic (sorted entries, fixed mtimes, uid/gid 0, gzip without a timestamp):
building again from the same host files gives the same digests, and the push is skipped when the
registry already has that manifest under the tag. Blobs the repository already has are not
uploaded again (HEAD), and blobs another repository has are mounted from it.

For each image named by --archive (default: busybox), also writes to --images-dir:
  NAME.oci.tar     an OCI image layout (oci-layout, index.json, blobs/sha256/...); the index
                   names it docker.io/library/NAME:latest (io.containerd.image.name) and latest
                   (org.opencontainers.image.ref.name)
  NAME.docker.tar  the `docker save` layout (manifest.json, the config, uncompressed layers)
each rewritten only when its content changed.

Python 3 standard library only.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request

# Every file and directory of every layer has this mtime (2024-01-01T00:00:00Z), and the image
# config this creation time.
EPOCH = 1704067200
CREATED = "2024-01-01T00:00:00Z"

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(msg):
    print(msg, flush=True)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dpkg_version(pkg):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                             capture_output=True, text=True, check=True).stdout
        return out.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --- layers -----------------------------------------------------------------------------------

class Layer:
    """A set of entries (path -> dir, file or symlink), written as a deterministic tar."""

    def __init__(self, comment):
        self.comment = comment
        self.entries = {}  # relative path (no leading /) -> (kind, mode, data or link target)

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self.entries:
                self.entries[parent] = ("dir", 0o755, None)

    @staticmethod
    def _norm(path):
        path = os.path.normpath("/" + path).lstrip("/")
        if not path:
            raise ValueError("empty path")
        return path

    def dir(self, path, mode=0o755):
        path = self._norm(path)
        self._parents(path)
        self.entries[path] = ("dir", mode, None)

    def file(self, path, data, mode=0o644):
        path = self._norm(path)
        if isinstance(data, str):
            data = data.encode()
        self._parents(path)
        self.entries[path] = ("file", mode, data)

    def copy(self, path, src=None):
        """Copy a host file (following symlinks) to path, keeping its permission bits."""
        src = src or "/" + path.lstrip("/")
        with open(src, "rb") as f:
            data = f.read()
        self.file(path, data, stat.S_IMODE(os.stat(src).st_mode))

    def symlink(self, path, target):
        path = self._norm(path)
        self._parents(path)
        self.entries[path] = ("symlink", 0o777, target)

    def tar(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for path in sorted(self.entries):
                kind, mode, data = self.entries[path]
                ti = tarfile.TarInfo(path)
                ti.mtime = EPOCH
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mode = mode
                if kind == "dir":
                    ti.type = tarfile.DIRTYPE
                    tf.addfile(ti)
                elif kind == "symlink":
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = data
                    tf.addfile(ti)
                else:
                    ti.type = tarfile.REGTYPE
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
        return buf.getvalue()


def gzip_bytes(data):
    buf = io.BytesIO()
    # No file name, mtime 0: the same input always gives the same bytes.
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


class Blob:
    def __init__(self, media_type, data):
        self.media_type = media_type
        self.data = data
        self.digest = sha256(data)
        self.size = len(data)

    def descriptor(self):
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class BuiltLayer:
    def __init__(self, layer):
        self.comment = layer.comment
        self.tar = layer.tar()
        self.diff_id = sha256(self.tar)
        self.blob = Blob(MT_LAYER, gzip_bytes(self.tar))


class Image:
    def __init__(self, repo, tag, layers, config, labels):
        self.repo = repo
        self.tag = tag
        self.layers = layers  # [BuiltLayer]
        cfg = {
            "created": CREATED,
            "architecture": "amd64",
            "os": "linux",
            "config": dict(config, Labels=labels),
            "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
            "history": [{"created": CREATED, "created_by": "devstack/tools/build-image.py: " + l.comment}
                        for l in layers],
        }
        self.config = Blob(MT_CONFIG, json.dumps(cfg, indent=2).encode() + b"\n")
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": self.config.descriptor(),
            "layers": [l.blob.descriptor() for l in layers],
        }
        self.manifest = Blob(MT_MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")

    @property
    def name(self):
        return "%s:%s" % (self.repo, self.tag)

    def blobs(self):
        return [self.config] + [l.blob for l in self.layers]


# --- image contents ---------------------------------------------------------------------------

PASSWD = """root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
nobody:x:65534:
nogroup:x:65534:
"""
NSSWITCH = """passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
"""
HOSTS = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
"""


def busybox_applets(busybox):
    out = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout
    applets = sorted({a.strip() for a in out.splitlines() if a.strip()})
    if "sh" not in applets:
        raise SystemExit("%s --list has no sh" % busybox)
    return applets


def busybox_layer(busybox="/bin/busybox"):
    layer = Layer("busybox %s (busybox-static), /etc basics" % dpkg_version("busybox-static"))
    layer.copy("bin/busybox", busybox)
    for applet in busybox_applets(busybox):
        if "/" in applet or applet == "busybox":
            continue
        layer.symlink("bin/" + applet, "busybox")
    for d in ("usr/bin", "usr/sbin", "sbin", "var", "home", "proc", "sys", "dev", "etc"):
        layer.dir(d)
    layer.dir("root", 0o700)
    layer.dir("tmp", 0o1777)
    layer.dir("var/tmp", 0o1777)
    layer.file("etc/passwd", PASSWD)
    layer.file("etc/group", GROUP)
    layer.file("etc/nsswitch.conf", NSSWITCH)
    layer.file("etc/hosts", HOSTS)
    # Placeholders: runtimes bind-mount their own.
    layer.file("etc/hostname", "")
    layer.file("etc/resolv.conf", "")
    return layer


NGINX_CONF = """# Written by devstack/tools/build-image.py.
# In the foreground by the image's entrypoint (nginx -g 'daemon off;'): a `daemon off;` here as
# well would make nginx refuse to start ("daemon" directive is duplicate).
user nobody nogroup;
worker_processes 1;
pid /run/nginx.pid;
error_log /dev/stderr notice;

events {
    worker_connections 256;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;

    server {
        listen 80 default_server;
        server_name _;
        root /usr/share/nginx/html;
        index index.html;
        location / {
            try_files $uri $uri/ =404;
        }
    }
}
"""

WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""


def ldd_paths(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = []
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" ", 1)[0]
        else:
            target = line.split(" ", 1)[0]
        if target.startswith("/"):
            paths.append(target)
        elif "not found" in line:
            raise SystemExit("ldd %s: %s" % (binary, line))
    if not any(os.path.basename(p).startswith("ld-linux") for p in paths):
        raise SystemExit("ldd %s lists no dynamic loader" % binary)
    return paths


def nginx_layer(nginx="/usr/sbin/nginx"):
    layer = Layer("nginx %s (Debian) with its shared libraries" % dpkg_version("nginx"))
    layer.copy("usr/sbin/nginx", nginx)
    # Each library at the path ldd names (the loader finds them there without ld.so.cache: Debian's
    # trusted directories include /lib/x86_64-linux-gnu), with the content of the file it points to.
    for lib in ldd_paths(nginx):
        layer.copy(lib)
    layer.file("etc/nginx/nginx.conf", NGINX_CONF)
    if os.path.exists("/etc/nginx/mime.types"):
        layer.copy("etc/nginx/mime.types")
    else:
        layer.file("etc/nginx/mime.types", "types {\n    text/html html htm;\n}\n")
    layer.file("usr/share/nginx/html/index.html", WELCOME)
    # nginx creates its temp directories (body, proxy, ...) under /var/lib/nginx at start; the
    # compiled-in access log, lock file and pid file go to these.
    layer.dir("var/lib/nginx")
    layer.dir("var/log/nginx")
    layer.symlink("var/log/nginx/access.log", "/dev/stdout")
    layer.symlink("var/log/nginx/error.log", "/dev/stderr")
    layer.dir("var/lock", 0o1777)
    layer.dir("run")
    layer.dir("var/cache/nginx")
    # For a plain chroot; a container runtime mounts its own /dev with the same links.
    layer.symlink("dev/stdout", "/proc/self/fd/1")
    layer.symlink("dev/stderr", "/proc/self/fd/2")
    layer.symlink("dev/stdin", "/proc/self/fd/0")
    layer.symlink("dev/fd", "/proc/self/fd")
    return layer


def build(name, cache):
    if "busybox" not in cache:
        cache["busybox"] = BuiltLayer(busybox_layer())
    base = cache["busybox"]
    bb_labels = {"org.opencontainers.image.title": "busybox",
                 "org.opencontainers.image.description": "busybox-static from Debian, built by devstack/tools/build-image.py",
                 "org.debian.package.busybox-static": dpkg_version("busybox-static")}
    if name == "busybox":
        return Image("library/busybox", "latest", [base],
                     {"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/"}, bb_labels)
    if name == "nginx":
        return Image("library/nginx", "latest", [base, BuiltLayer(nginx_layer())],
                     {"Env": [PATH_ENV], "Entrypoint": ["nginx", "-g", "daemon off;"],
                      "WorkingDir": "/", "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT"},
                     {"org.opencontainers.image.title": "nginx",
                      "org.opencontainers.image.description": "nginx from Debian on busybox, built by devstack/tools/build-image.py",
                      "org.debian.package.nginx": dpkg_version("nginx"),
                      "org.debian.package.busybox-static": dpkg_version("busybox-static")})
    raise SystemExit("unknown image %r (busybox, nginx)" % name)


# --- registry (HTTP API v2) -------------------------------------------------------------------

class Registry:
    def __init__(self, addr):
        self.base = "http://%s" % addr

    def request(self, method, url, data=None, headers=None, ok=(200,)):
        if not url.startswith("http"):
            url = urllib.parse.urljoin(self.base, url)
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = resp.read()
                status, hdrs = resp.status, resp.headers
        except urllib.error.HTTPError as e:
            body, status, hdrs = e.read(), e.code, e.headers
        if status not in ok:
            raise RuntimeError("%s %s: HTTP %s %s" % (method, url, status, body[:500].decode(errors="replace")))
        return status, hdrs, body

    def check(self):
        self.request("GET", "/v2/")

    def manifest_digest(self, repo, tag):
        status, hdrs, _ = self.request("HEAD", "/v2/%s/manifests/%s" % (repo, tag),
                                       headers={"Accept": MT_MANIFEST}, ok=(200, 404))
        return hdrs.get("Docker-Content-Digest") if status == 200 else None

    def has_blob(self, repo, digest):
        status, _, _ = self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest), ok=(200, 404))
        return status == 200

    def push_blob(self, repo, blob, mount_from=()):
        """Returns how the blob got there: 'present', 'mounted' or 'uploaded'."""
        if self.has_blob(repo, blob.digest):
            return "present"
        for other in mount_from:
            if other == repo:
                continue
            status, hdrs, _ = self.request(
                "POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (repo, blob.digest, other),
                ok=(201, 202))
            if status == 201:
                return "mounted"
            # 202: an upload session was started instead; abandon it and upload.
            loc = hdrs.get("Location")
            if loc:
                self.request("DELETE", loc, ok=(204, 404))
        # Monolithic upload: POST opens a session, PUT with ?digest= sends it all and closes it.
        _, hdrs, _ = self.request("POST", "/v2/%s/blobs/uploads/" % repo, ok=(202,))
        loc = hdrs.get("Location")
        if not loc:
            raise RuntimeError("POST /v2/%s/blobs/uploads/: no Location" % repo)
        loc = urllib.parse.urljoin(self.base, loc)
        loc += ("&" if "?" in loc else "?") + urllib.parse.urlencode({"digest": blob.digest})
        self.request("PUT", loc, data=blob.data, ok=(201,), headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(blob.size)})
        if not self.has_blob(repo, blob.digest):
            raise RuntimeError("blob %s missing from %s after upload" % (blob.digest, repo))
        return "uploaded"

    def push(self, image, mount_from):
        current = self.manifest_digest(image.repo, image.tag)
        if current == image.manifest.digest:
            log("up to date %s/%s %s" % (self.base[len("http://"):], image.name, image.manifest.digest))
            return False
        for blob in image.blobs():
            how = self.push_blob(image.repo, blob, mount_from)
            log("  blob %s %s (%d bytes): %s" % (blob.media_type, blob.digest, blob.size, how))
        self.request("PUT", "/v2/%s/manifests/%s" % (image.repo, image.tag), data=image.manifest.data,
                     headers={"Content-Type": MT_MANIFEST}, ok=(201,))
        got = self.manifest_digest(image.repo, image.tag)
        if got != image.manifest.digest:
            raise RuntimeError("%s: registry has manifest %s, pushed %s" % (image.name, got, image.manifest.digest))
        log("pushed %s/%s %s (was %s)" % (self.base[len("http://"):], image.name, image.manifest.digest,
                                          current or "absent"))
        return True


# --- archives ---------------------------------------------------------------------------------

def tar_of(files):
    """A deterministic tar of {path: bytes} (directories added for the paths' parents)."""
    layer = Layer("archive")
    for path, data in files.items():
        layer.file(path, data)
    return layer.tar()


def oci_archive(image, short):
    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [dict(image.manifest.descriptor(), annotations={
            "io.containerd.image.name": "docker.io/library/%s:%s" % (short, image.tag),
            "org.opencontainers.image.ref.name": image.tag,
        })],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, indent=2).encode() + b"\n",
    }
    for blob in [image.manifest] + image.blobs():
        files["blobs/sha256/" + blob.digest.split(":", 1)[1]] = blob.data
    return tar_of(files)


def docker_archive(image, short):
    config_name = image.config.digest.split(":", 1)[1] + ".json"
    files = {config_name: image.config.data}
    layer_names = []
    for layer in image.layers:
        name = layer.diff_id.split(":", 1)[1] + "/layer.tar"
        files[name] = layer.tar
        layer_names.append(name)
    manifest = [{"Config": config_name, "RepoTags": ["%s:%s" % (short, image.tag)], "Layers": layer_names}]
    files["manifest.json"] = json.dumps(manifest).encode() + b"\n"
    files["repositories"] = json.dumps(
        {short: {image.tag: image.layers[-1].diff_id.split(":", 1)[1]}}).encode() + b"\n"
    return tar_of(files)


def write_if_changed(path, data):
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                log("kept %s (%d bytes, %s)" % (path, len(data), sha256(data)))
                return False
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    log("wrote %s (%d bytes, %s)" % (path, len(data), sha256(data)))
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--registry", default="127.0.0.1:5100", help="host:port, plain HTTP")
    ap.add_argument("--no-push", action="store_true", help="build (and write archives) only")
    ap.add_argument("--images-dir", default="/opt/capsule/images")
    ap.add_argument("--archive", action="append", help="write NAME.oci.tar and NAME.docker.tar "
                    "(default: busybox, when it is built); --archive none for none")
    ap.add_argument("images", nargs="+", choices=["busybox", "nginx"])
    args = ap.parse_args()
    archives = args.archive if args.archive is not None else ["busybox"]
    archives = [a for a in archives if a != "none"]

    cache = {}
    built = []
    for name in args.images:
        image = build(name, cache)
        log("built %s: manifest %s (%d bytes), config %s, layers %s" % (
            image.name, image.manifest.digest, image.manifest.size, image.config.digest,
            ", ".join("%s (%d bytes, tar %d bytes, diff_id %s)" % (l.blob.digest, l.blob.size, len(l.tar), l.diff_id)
                      for l in image.layers)))
        built.append((name, image))

    if not args.no_push:
        reg = Registry(args.registry)
        reg.check()
        pushed = []
        for _, image in built:
            reg.push(image, mount_from=pushed)
            pushed.append(image.repo)

    os.makedirs(args.images_dir, exist_ok=True)
    for name, image in built:
        if name in archives:
            write_if_changed(os.path.join(args.images_dir, name + ".oci.tar"), oci_archive(image, name))
            write_if_changed(os.path.join(args.images_dir, name + ".docker.tar"), docker_archive(image, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
