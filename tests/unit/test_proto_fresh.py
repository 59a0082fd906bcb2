"""The committed generated code must be what `make proto` produces now."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ("netd_pb2.py", "netd_pb2.pyi", "netd_pb2_grpc.py")


def test_generated_code_is_up_to_date(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(ROOT / "proto/netd/v1/netd.proto")],
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "netd/v1" / name).read_text()
        committed = (ROOT / "netd/v1" / name).read_text()
        assert fresh == committed, f"netd/v1/{name} is stale: run `make proto`"
