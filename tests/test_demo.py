import json

from edgernn.runtime.variants import ALL_VARIANTS


def test_demo_quick_runs_every_stage(runner, tmp_path):
    from edgernn.cli.commands import cli

    out = tmp_path / "demo"
    result = runner.invoke(cli, ["demo", "--quick", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # --json: the summary only, strict JSON
    # every variant once, in order (integer ones again on TFLite Micro where tflite-micro is installed)
    assert list(dict.fromkeys(v["variant"] for v in summary["verify"]["variants"])) == list(ALL_VARIANTS)
    assert all(v["result"] == "pass" for v in summary["verify"]["variants"]) and summary["stream_rmse"] > 0
    assert (out / "bundle" / "verify.json").exists() and (out / "model.keras").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # nothing outside --out
