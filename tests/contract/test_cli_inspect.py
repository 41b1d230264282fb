import json
import shutil
from pathlib import Path

from pipeline.cli import main

SAMPLE = Path(__file__).parent.parent / "events" / "manifest.json"


def test_inspect_prints_columns_and_run(tmp_path, capsys):
    folder = tmp_path / "inventory" / "example-source" / "cfg" / "2024-11-24T03-00Z"
    folder.mkdir(parents=True)
    shutil.copy(SAMPLE, folder / "manifest.json")
    assert main(["inspect", str(folder / "manifest.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_date"] == "2024-11-24"
    assert out["processed_prefix"] == "processed/source_bucket=example-source/run_date=2024-11-24/"
    assert out["columns"]["size"] == "int64"
    assert out["compressed_bytes"] == 4040


def test_inspect_reports_a_bad_manifest_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "manifest.json"
    bad.write_text('{"fileFormat": "ORC"}')
    assert main(["inspect", str(bad)]) == 2
    assert "fileFormat 'ORC'" in capsys.readouterr().err


def test_inspect_and_run_local_refuse_a_deeply_nested_manifest_with_exit_2(tmp_path, capsys):
    folder = tmp_path / "inventory" / "example-source" / "cfg" / "2024-11-24T03-00Z"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    for command in (["inspect"], ["run-local", "--out", str(tmp_path / "out")]):
        argv = [command[0], str(folder / "manifest.json"), *command[1:]]
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), err
        assert "nested too deeply" in err
