"""Reading back what the loggers wrote, as their own tools would: W&B's offline transaction log, MLflow's
client in a fresh process, TensorBoard's event reader. Shared by the logger tests and the recipes' end-to-end
tests."""

import atexit
import glob
import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path


def read_wandb_records(path):
    """Records of a W&B ``.wandb`` transaction log (LevelDB log format: 32 KiB blocks of CRC'd chunks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B"
    pos, block, partial = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):
            pos += left  # block trailer / padding
            continue
        if pos + 7 + length > len(data):
            return  # a chunk W&B's service is still writing: read again later (wait_for_exit_record)
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        partial = chunk if kind in (1, 2) else partial + chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(partial)
            yield record


def wandb_glob(pattern, timeout=30.0):
    """`glob.glob(pattern)` once W&B's service has created what it matches: on a loaded machine the run's
    folder and `.wandb` file can appear after `finish()` returns."""
    deadline = time.monotonic() + timeout
    while True:
        found = glob.glob(str(pattern))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def wait_for_exit_record(path, timeout=30.0):
    """W&B's service writes the offline log asynchronously: finish() can return before it is flushed."""
    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + timeout
    while True:
        try:
            records = list(read_wandb_records(path))
        except DecodeError:  # read while a record was half written: its bytes are not all there yet
            if time.monotonic() > deadline:
                raise
            records = []
        if "exit" in [r.WhichOneof("record_type") for r in records] or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def wandb_artifacts(run_folder):
    """(name, type, aliases, {file in the artifact: its staged copy's bytes}) of an offline run's artifacts."""
    (path,) = wandb_glob(f"{run_folder}/run-*.wandb")
    out = []
    for record in wait_for_exit_record(path):
        if record.WhichOneof("record_type") == "artifact":
            a = record.artifact
            files = {c.path: Path(c.local_path).read_bytes() for c in a.manifest.contents}
            out.append((a.name, a.type, sorted(a.aliases), files))
    return out


#: The reader for read_mlflow_run_in_a_fresh_process: a Python that reads runs with MLflow's client, one
#: request a line on its stdin, one JSON answer a line on its stdout.
_MLFLOW_READER_CODE = """
import json
import sys
from mlflow.tracking import MlflowClient
for request in sys.stdin:
    uri, run_id = json.loads(request)
    try:
        client = MlflowClient(tracking_uri=uri)
        run = client.get_run(run_id)
        def files(path=None):
            out = []
            for item in client.list_artifacts(run_id, path):
                out += files(item.path) if item.is_dir else [item.path]
            return out
        answer = {"status": run.info.status, "name": run.info.run_name, "params": run.data.params,
                  "metrics": run.data.metrics, "tags": run.data.tags, "artifacts": sorted(files()),
                  "artifact_uri": run.info.artifact_uri}
    except Exception as exc:
        answer = {"error": repr(exc)}
    print("ANSWER " + json.dumps(answer), flush=True)
"""
_mlflow_reader = None


def read_mlflow_run_in_a_fresh_process(uri, run_id):
    """What MLflow's own client reads from the store, in another process, one without any MLFLOW_* variable
    (as the user's `mlflow ui` or notebook would). One such process serves the test process's reads: each new
    one spent seconds importing mlflow, a tenth of the whole logger tests' time."""
    global _mlflow_reader
    if _mlflow_reader is None or _mlflow_reader.poll() is not None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        _mlflow_reader = subprocess.Popen(
            [sys.executable, "-c", _MLFLOW_READER_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # (a pipe no one reads could fill and block the reader)
            text=True,
            env=env,
        )
        atexit.register(_stop_mlflow_reader, _mlflow_reader)
    reader = _mlflow_reader
    reader.stdin.write(json.dumps([uri, run_id]) + "\n")
    reader.stdin.flush()
    # A reader that hangs fails the read within 120 s, as the process per read did with its timeout.
    timer = threading.Timer(120, reader.kill)
    timer.start()
    try:
        for line in reader.stdout:
            if line.startswith("ANSWER "):
                answer = json.loads(line[len("ANSWER ") :])
                break
        else:
            raise AssertionError(f"the MLflow reader process ended (exit status {reader.wait()})")
    finally:
        timer.cancel()
    assert "error" not in answer, answer["error"]
    return answer


def _stop_mlflow_reader(reader):
    if reader.poll() is None:
        reader.stdin.close()
        try:
            reader.wait(timeout=10)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait()
    reader.stdout.close()


def read_scalars(log_dir):
    """{tag: [(step, value)]} of a run folder's scalars as TensorBoard's Python reader shows them
    (``tensorboard --load_fast=false``: the plugin accumulator). It purges a resumed run's dropped steps only at
    a folder's second session start; the legacy ``event_accumulator`` read before purged at every one, and hid
    a resume whose dropped steps TensorBoard still showed."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {
        tag: [(e.step, tensor_util.make_ndarray(e.tensor_proto).item()) for e in acc.Tensors(tag)]
        for tag in acc.PluginTagToContent("scalars")
    }


def read_hparams_plugin(log_dir):
    """The HParams plugin's records in a run folder: {tag: HParamsPluginData}, as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {
        tag: plugin_data_pb2.HParamsPluginData.FromString(content)
        for tag, content in acc.PluginTagToContent("hparams").items()
    }
