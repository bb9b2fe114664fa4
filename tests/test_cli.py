"""`python -m core analyze`: JSON last line, CSV files, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT, fixture


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_analyze_writes_db_and_csvs(tmp_path):
    out = tmp_path / "out"
    proc = _run(
        "analyze", str(fixture("WolfgangLanger_Pexels.mp4")), "--db", str(tmp_path / "c.duckdb"), "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["students"] == 1 and result["observations"] == 20  # 20 s at 1 fps
    assert {"lecture_id", "students", "observations", "seconds"} <= result.keys()
    obs = pd.read_csv(out / "observations.csv")
    students = pd.read_csv(out / "students.csv")
    assert len(obs) == 20 and set(obs["student"]) == {"Student 1"}
    assert len(students) == 1 and students["moments_present"][0] == 20 and students["presence"][0] == 1.0
    assert "%" in proc.stderr  # the progress bar


@pytest.mark.parametrize(("content", "expect"), [(b"", "empty"), (b"just some text\n" * 10, "not a video")])
def test_bad_input_exits_nonzero_with_one_line(tmp_path, content, expect):
    bad = tmp_path / "lecture.mp4"
    bad.write_bytes(content)
    proc = _run("analyze", str(bad), "--db", str(tmp_path / "c.duckdb"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: lecture.mp4") and expect in lines[0]
    assert "Traceback" not in proc.stderr
