def test_demo_quick_runs_every_stage(runner, tmp_path):
    from edgernn.cli import cli

    out = tmp_path / "demo"
    result = runner.invoke(cli, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for variant in ("tflite-float32", "tflite-float16", "tflite-dynamic", "tflite-int8", "tflite-int16x8",
                    "onnx-float32", "onnx-int8"):
        assert variant in result.stdout
    assert (out / "bundle" / "verify.json").exists() and (out / "model.keras").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # nothing outside --out
