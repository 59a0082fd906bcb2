"""A busybox container image built from the machine's busybox-static, for the runtime tests."""

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

IMAGE = "netd.test/busybox:1"


def busybox_oci_archive(path: Path) -> None:
    """An OCI image layout with one layer: busybox and a few applets."""
    layout = path.with_suffix(".d")
    (layout / "blobs" / "sha256").mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256" / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        bin_dir = tarfile.TarInfo("bin")
        bin_dir.type, bin_dir.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(bin_dir)
        tar.add(shutil.which("busybox"), arcname="bin/busybox")
        for applet in ("sh", "wget", "ping", "ip", "timeout", "httpd"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    layer_bytes = layer.getvalue()
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(json.dumps(config).encode())},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer_bytes)}]}
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(json.dumps(manifest).encode()),
        "annotations": {"org.opencontainers.image.ref.name": IMAGE}}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    with tarfile.open(path, "w") as tar:
        for entry in layout.iterdir():
            tar.add(entry, arcname=entry.name)
