"""A rule job's log file receives its logging, warnings and the error that ended it."""

import subprocess
import sys


def test_an_uncaught_error_reaches_the_log_file_and_stderr(tmp_path):
    log = tmp_path / "job.log"
    script = (
        "import logging, warnings\n"
        "from radiotx import logs\n"
        f"logs.to_file({str(log)!r})\n"
        "logging.getLogger('radiotx.x').info('extracting patient P001')\n"
        "warnings.warn('few voxels')\n"
        "raise ValueError('patient P002: mask is empty. Fix: redraw the mask')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 1
    text = log.read_text(encoding="utf-8")
    assert "extracting patient P001" in text and "few voxels" in text
    assert "Traceback" in text and "patient P002: mask is empty. Fix: redraw the mask" in text
    assert "patient P002: mask is empty" in run.stderr
