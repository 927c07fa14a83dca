"""Convert a ticket to TFLite files and prove every file right with the LiteRT interpreter.

Modes (each a `.tflite` file in `<ticket>/tflite/`):
  float         dense float32, the reference;
  sparse        float32 with `EXPERIMENTAL_SPARSITY` (sparse tensor encoding: a small file);
  int8          full-integer post-training quantization calibrated on the ticket's own data,
                sparse encoding kept where the default interpreter can run it;
  int8_qat      prune-preserving quantization-aware fine-tuning (tfmot's
                `Default8BitPrunePreserveQuantizeScheme`) before int8 conversion;
  block_float / block_int8
                the sparse encodings of a ticket found with `--strategy=block`, whose masks are
                made of the blocks TFLite's sparse FULLY_CONNECTED kernels skip (1x4 float,
                1x16 int8): checked, so a ticket of other masks is refused in these modes.

Every file is loaded with the default interpreter (its default delegate, XNNPACK, included),
run over the test set, and compared with the Keras ticket: accuracy, top-1 agreement, max
logit difference, size raw and gzipped; it is timed under the default interpreter and under
the builtin kernels without delegates (XNNPACK takes the dense path for fully-connected
layers; the builtin kernels include the sparse ones), and each op gets a row saying which
kernel runs it and how its weights are stored. All in `convert.json`; the printed summary
names the faster way to run each file and says plainly when no sparse kernel ran.
A file that does not load is never kept.

Everything is validated here, before any work; the conversion itself runs in a subprocess
(`python -m tflottery.deploy.worker`): the 2.21 converter leaks about 20 MB a call, and the
memory goes back when the subprocess ends.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from tflottery.core.errors import ConfigError, ConversionError, TicketError
from tflottery.core.values import as_bool, as_literal_true
from tflottery.deploy.checks import ERROR_PREFIX, check_blocks, check_output, divisor_of, representative_arrays
from tflottery.deploy.modes import MODES, block_modes as registered_block_modes

def convert(ticket: "str | Path", modes: "list[str] | tuple | str" = ("float", "sparse", "int8"),
            representative: Optional[str] = None, qat_steps: int = 0, block_sparse: bool = False,
            out: "str | Path | None" = None, finetune_steps: int = 300, min_agreement: float = 0.95,
            trust_code: bool = False, in_process: bool = False) -> dict:
    """Convert `ticket` in each mode, verify each file, write `convert.json`; return its contents.

    `representative`: an .npz with `x` (uint8 images, NHWC) and optionally `y`, used for int8
    calibration and evaluation when the ticket's own dataset cannot be loaded here.
    `qat_steps` > 0 adds `int8_qat`; `block_sparse` adds `block_float` and `block_int8`, those
    whose kernel the ticket's blocks fit (1x4 blocks: `block_float`; 1x16: both).
    A file whose top-1 agreement with its Keras model is below `min_agreement` is kept only as
    `<mode>.rejected.tflite` and marked `"ok": false`, so it is never mistaken for a deployable one.
    """
    if not isinstance(ticket, (str, Path)) or not str(ticket):
        raise TicketError(f"ticket={ticket!r} must be the path of a ticket directory.")
    if out is not None and (not isinstance(out, (str, Path)) or not str(out)):
        raise ConfigError(f"out={out!r} must name a folder for the .tflite files (or be left out).")
    block_sparse, trust_code = as_bool(block_sparse, "block_sparse"), as_literal_true(trust_code, "trust_code")
    modes = check_modes(modes, qat_steps)
    for name, value, low in (("qat_steps", qat_steps, 0), ("finetune_steps", finetune_steps, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r} must be an integer >= {low}.")
    if isinstance(min_agreement, bool) or not isinstance(min_agreement, (int, float)) \
            or not math.isfinite(min_agreement) or not 0.0 <= min_agreement <= 1.0:
        raise ConfigError(f"min_agreement={min_agreement!r} must be a fraction in [0, 1], e.g. 0.95.")
    if any(MODES[m].trains for m in modes) and qat_steps < 1:
        qat_steps = finetune_steps
    if representative is not None and (not isinstance(representative, (str, Path)) or not str(representative)
                                       or not Path(representative).is_file()):
        raise ConfigError(f"representative={representative!r} is not a file: pass an .npz with an array x.")
    from tflottery.tickets import read_ticket

    verified = read_ticket(ticket, trust_code)  # a clear error here, before any subprocess starts
    check_output(Path(ticket), Path(out) if out is not None else None)
    crashing = [m for m in modes if MODES[m].int8]
    if crashing and verified.architecture is not None and '"class_name": "GRU"' in verified.architecture:
        raise ConversionError(f"Mode(s) {', '.join(crashing)}: TFLite's converter crashes (a segmentation fault, "
                              "TensorFlow 2.21) quantizing GRU layers to int8: convert with --modes=float,sparse, or "
                              "use LSTM layers, whose int8 files convert.")
    if representative is not None:
        from tflottery.core.keras_compat import keras

        shape = tuple(keras.models.model_from_json(verified.architecture).input_shape[1:])
        representative_arrays(representative, shape, len(verified.meta.get("class_names") or []) or None,
                              divisor_of(verified.meta))
    if block_sparse:
        modes += block_modes(verified.masks, [m for m in registered_block_modes() if m not in modes])
    for mode in modes:
        if MODES[mode].block:
            check_blocks(verified.masks, MODES[mode].block, mode)
    args = [str(ticket), modes, representative, qat_steps, str(out) if out else None, finetune_steps,
            float(min_agreement), trust_code]
    if in_process:
        from tflottery.deploy.worker import convert_ticket

        return convert_ticket(*args)
    return _in_subprocess(args)


def block_modes(masks: dict, wanted: list) -> list:
    """Of the block modes `--block_sparse` asks for, those whose kernel this ticket's blocks fit (a 1x4 ticket
    gets block_float; block_int8 needs 1x16); none fitting is refused as an explicit mode would be."""
    fitting = []
    for mode in wanted:
        try:
            check_blocks(masks, MODES[mode].block, mode)
            fitting.append(mode)
        except ConversionError:
            pass
    if wanted and not fitting:
        check_blocks(masks, MODES[wanted[0]].block, wanted[0])  # raises, naming the fix
    skipped = [m for m in wanted if m not in fitting]
    if skipped:
        print(f"[tflottery] --block_sparse: {', '.join(skipped)} skipped (its kernel needs 1x"
              f"{MODES[skipped[0]].block} blocks; this ticket's masks are in narrower ones)", flush=True)
    return fitting


def check_modes(modes, qat_steps: int = 0) -> list:
    if isinstance(modes, str):
        modes = [m.strip() for m in modes.split(",") if m.strip()]
    if not isinstance(modes, (list, tuple)) or not all(isinstance(m, str) for m in modes):
        raise ConfigError(f"modes={modes!r}: give a list of modes, e.g. float,sparse,int8.")
    modes = list(dict.fromkeys(modes))
    if qat_steps and "int8_qat" not in modes:
        modes.append("int8_qat")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(f"Unknown TFLite mode(s) {unknown}: choose from {', '.join(MODES)}.")
    if not modes:
        raise ConfigError(f"No TFLite mode given: choose from {', '.join(MODES)}.")
    return modes


def die_with_parent() -> None:
    """In the conversion subprocess, before it runs: SIGKILL it when its parent dies (Linux PR_SET_PDEATHSIG),
    so a killed `convert` leaves no worker writing into the ticket."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(1)


def _in_subprocess(args: list) -> dict:
    """Run the conversion as `python -m tflottery.deploy.worker`: independent of the caller's __main__
    (multiprocessing's spawn would re-run an unguarded user script), memory returned on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        request, answer = Path(tmp) / "args.json", Path(tmp) / "report.json"
        request.write_text(json.dumps(args))
        result = subprocess.run([sys.executable, "-m", "tflottery.deploy.worker", str(request), str(answer)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=die_with_parent)
        if result.stdout:
            print(result.stdout, end="", flush=True)
        if result.returncode == 0 and answer.exists():
            return json.loads(answer.read_text())
        lines = [line for line in result.stderr.strip().splitlines() if line.startswith(ERROR_PREFIX)]
        if lines:
            raise ConversionError(lines[-1][len(ERROR_PREFIX):])
        if result.returncode < 0:  # killed by a signal: TFLite's converter or interpreter crashed in native code
            started = [line.split()[1] for line in result.stdout.splitlines() if line.endswith(": converting")]
            raise ConversionError(f"TFLite crashed (signal {-result.returncode}) converting mode "
                                  f"{started[-1].rstrip(':') if started else '?'}: a fault in its native code, not in the "
                                  "ticket; the files printed above are written. Leave that mode out (--modes=...).")
        raise RuntimeError(f"TFLite conversion failed in its subprocess (exit {result.returncode}):\n"
                           + "\n".join(result.stderr.strip().splitlines()[-15:]))
