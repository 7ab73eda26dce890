"""What verify returns: one row per variant and the run around them (JSON-ready)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class VariantResult:
    variant: str
    backend: str
    size_bytes: int
    vs_float: dict = field(default_factory=dict)
    drift: float = float("nan")
    task_rmse: float = float("nan")
    passed: bool = False
    skipped: bool = False  # no interpreter for this variant here (e.g. onnx-* on a device with LiteRT only)
    incompatible: bool = False  # the export recorded that this interpreter cannot load this file (reasons say why)
    reasons: list[str] = field(default_factory=list)
    out_of_range_pct: float = 0.0  # share of steps whose input was outside the calibrated range
    clipped_pct: float = 0.0  # share of steps whose input an integer variant's input quantization clipped
    cross_backend: dict = field(default_factory=dict)  # other backend -> max |difference| / float range
    diagnosis: list[dict] = field(default_factory=list)  # worst tensors, for a failing diagnosable variant
    # intervals (calibrated at export): level -> share of held-out test values inside, and the interval's width
    coverage: dict = field(default_factory=dict)
    interval_width: dict = field(default_factory=dict)
    coverage_points: int = 0  # held-out test values scored
    arena_bytes: int | None = None  # on tflm: the tensor arena the model needs (a microcontroller's RAM)
    note: str | None = None  # how the backend ran it, when not the usual way (e.g. reference kernels)
    per_output: dict = field(default_factory=dict)  # multivariate: output name -> its figures (vs_float: the worst)


@dataclass
class VerifyResult:
    bundle: str
    data: str
    steps: int
    float_task_rmse: float
    persistence_rmse: float
    variants: list[VariantResult]
    arrays: dict = field(default_factory=dict, repr=False)  # inputs, reference and predictions, for the report
    reference: str = "keras"  # keras: the float model run here; stored: the outputs recorded at export
    float_test_rmse: float | None = None  # the float model on the held-out test split, first pass
    train_test_rmse: float | None = None  # what train reported there (its state warmed on the whole series)

    named: bool = False  # the user named the variants or the backend: an INCOMPATIBLE pairing then fails
    outputs: dict = field(default_factory=dict)  # multivariate: output name -> float model and persistence RMSE
    columns: object = field(default=None, repr=False)  # multivariate: the bundle's Columns (for the report)
    # train's comparison with its peers on the training split's validation and test parts (edgernn.training.peers): rows of
    # name, val_rmse, test_rmse; per one-step output name for a multivariate model; empty when not recorded
    comparison: dict = field(default_factory=dict)

    @property
    def not_verified(self) -> list[str]:
        """Variants no interpreter ran in this verify because the manifest says none can (INCOMPATIBLE wherever
        tried): a claim is not a run, so such a variant is never a pass (an attacker can write the claim)."""
        names = dict.fromkeys(v.variant for v in self.variants)
        return [name for name in names
                if all(v.skipped or v.incompatible for v in self.variants if v.variant == name)
                and any(v.incompatible for v in self.variants if v.variant == name)]

    @property
    def passed(self) -> bool:
        if self.not_verified or (self.named and any(v.incompatible for v in self.variants)):
            return False
        return all(v.passed for v in self.variants if not (v.skipped or v.incompatible))

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "not verified" if self.not_verified and not self.failed else "fail"

    @property
    def failed(self) -> list[str]:
        """Variants that ran somewhere and failed the gate there."""
        return list(dict.fromkeys(v.variant for v in self.variants
                                  if not (v.passed or v.skipped or v.incompatible)))

    def to_dict(self) -> dict:
        """JSON-ready: each variant's ``result`` is ``pass``, ``fail``, ``skipped`` or ``incompatible`` (for the
        last two ``passed`` is null: a variant that could not run here neither passed nor failed)."""
        data = asdict(self)
        data.pop("arrays")
        data.pop("columns")
        for row in data["variants"]:
            row["result"] = ("skipped" if row["skipped"] else "incompatible" if row["incompatible"] else
                             "pass" if row["passed"] else "fail")
            if row["skipped"] or row["incompatible"]:
                row["passed"] = None
        return {**data, "passed": self.passed, "verdict": self.verdict, "not_verified": self.not_verified}
