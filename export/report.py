"""The export's ``report.json``: its targets, its notes and its printed summary.

The report's ``goals`` map names each target the int8 (or int16x8) model is judged
against (agreement with the float model, accuracy drop, TFLite Micro against LiteRT);
:func:`format_report` states them in words of the model ("int8 agrees with float on
97.9% of test clips").
"""

from __future__ import annotations

from .runtimes import LITERT_RESOLVER_TYPES

AGREEMENT_GOAL = 0.99
ACCURACY_DROP_GOAL = 0.5  # points
LSB_GOAL = 2


def goals(verification: dict, quantization: str) -> dict:
    """Whether the exported model meets each target (the report's ``goals``).

    Args:
        verification: the report's ``verification`` (:func:`verify_model`).
        quantization: the export's quantization.

    Returns:
        ``{target name: met}``, in a fixed order.
    """
    lite = verification["litert"]
    met = {"litert_agreement_ge_99pct": lite["agreement_with_float"] >= AGREEMENT_GOAL}
    if lite["accuracy_drop_points"] is not None:
        met["litert_accuracy_drop_le_0.5_points"] = (
            lite["accuracy_drop_points"] <= ACCURACY_DROP_GOAL
        )
    micro = verification.get("tflm")
    if micro is not None:
        met["tflm_agreement_ge_99pct"] = micro["agreement_with_float"] >= AGREEMENT_GOAL
        if micro["accuracy_drop_points"] is not None:
            met["tflm_accuracy_drop_le_0.5_points"] = (
                micro["accuracy_drop_points"] <= ACCURACY_DROP_GOAL
            )
        if quantization == "int8":  # int16 LSB are 256x finer: no target there
            diff = micro["max_diff_vs_litert"]["per_step"]
            met["tflm_vs_litert_per_step_max_le_2_lsb"] = (
                max(diff["logits"], diff["states"]) <= LSB_GOAL
            )
            # Spiking models: one LSB below a threshold flips a spike (a large
            # difference on that frame only), so also judge the share of frames.
            met["tflm_vs_litert_per_step_le_2_lsb_on_99pct_frames"] = (
                micro["per_step_frames_within_goal"] >= AGREEMENT_GOAL
            )
    return met


def _resolver_kind(resolver: str) -> str:
    kind = LITERT_RESOLVER_TYPES[resolver]
    return "optimized kernels + XNNPACK" if kind is None else f"OpResolverType.{kind}"


def _other_resolver_notes(micro: dict, resolver: str) -> list[str]:
    main = micro["max_diff_vs_litert"]["per_step"]
    main_met = max(main["logits"], main["states"]) <= LSB_GOAL
    notes = []
    for key, value in micro.items():
        if not key.startswith("max_diff_vs_litert_"):
            continue
        other = key[len("max_diff_vs_litert_") :]
        if "error" in value:
            notes.append(f"LiteRT {other} kernels: not run ({value['error']}).")
            continue
        step = value["per_step"]
        notes.append(
            f"Per step against LiteRT's {other} kernels: logits "
            f"{step['logits']:g}, states {step['states']:g} {value['unit']}."
        )
        other_met = max(step["logits"], step["states"]) <= LSB_GOAL
        if value["unit"] == "lsb" and main_met != other_met:
            met, unmet = (resolver, other) if main_met else (other, resolver)
            notes.append(
                f"The per-step {LSB_GOAL:g}-LSB goal is met only against LiteRT's "
                f"{met} kernels, not its {unmet} kernels."
            )
    return notes


def notes(verification: dict) -> list[str]:
    """The report's ``notes``: how the TFLM-vs-LiteRT differences were measured."""
    micro = verification.get("tflm")
    if micro is None:
        return []
    resolver = micro["max_diff_vs_litert"]["resolver"]
    return [
        f"TFLM-vs-LiteRT differences are measured against LiteRT's {resolver} "
        f"kernels ({_resolver_kind(resolver)}), per step (TFLM fed LiteRT's state "
        "inputs). TFLite Micro's int8 kernels requantize with gemmlowp's doubling "
        "high multiply and a rounding shift. LiteRT's reference FULLY_CONNECTED "
        "kernel rounds differently on about 0.1% of outputs (one LSB), which is why "
        "the export runs each Dense as a 1x1 CONV_2D (dense_as_conv); XNNPACK's "
        "int8 kernels (the 'default' set) requantize their own way and differ by "
        "one LSB more often.",
        *_other_resolver_notes(micro, resolver),
    ]


def _accuracy_text(accuracy, float_accuracy) -> str:
    if accuracy is None:
        return ""
    text = f", accuracy {accuracy:.4f}"
    if float_accuracy is not None:
        text += f" (float {float_accuracy:.4f})"
    return text


def _litert_line(report: dict, clips: str) -> str:
    verification = report["verification"]
    lite = verification["litert"]
    return (
        f"  LiteRT: {report['quantization']} agrees with float on "
        f"{lite['agreement_with_float']:.1%} of {lite['clips']} {clips} clips"
        + _accuracy_text(lite["accuracy"], verification["float"]["accuracy"])
    )


def _tflm_lines(report: dict, clips: str) -> list[str]:
    micro = report["verification"].get("tflm")
    if not micro:
        return []
    diff = micro["max_diff_vs_litert"]
    step, free = diff["per_step"], diff["free_running"]
    lines = [
        f"  TFLite Micro: {report['quantization']} agrees with float on "
        f"{micro['agreement_with_float']:.1%} of {micro['clips']} {clips} clips"
        + _accuracy_text(micro["accuracy"], micro.get("float_accuracy_same_clips"))
        + f"; differs from LiteRT's {diff['resolver']} kernels by at most "
        f"{step['logits']:g}/{step['states']:g} {diff['unit']} (logits/states) in "
        f"one step, {free['logits']:g}/{free['states']:g} free-running; within "
        f"{micro['lsb_goal']:g} on {micro['per_step_frames_within_goal']:.1%} of "
        "frames"
    ]
    div = micro.get("divergence_by_op")
    if div:
        lines.append(
            f"  per op ({div['clips']} clips, same inputs): the kernels differ "
            f"at {len(div['ops_whose_kernels_differ'])} of {div['ops']} op "
            f"outputs (by <= {div['largest_own_lsb']} LSB); largest op-output "
            f"difference {div['largest_max_lsb']} LSB"
        )
    return lines


def _unmet_text(name: str, report: dict) -> str:
    """One unmet target, said of the model."""
    verification, q = report["verification"], report["quantization"]
    runtime, key = (
        ("LiteRT", "litert") if name.startswith("litert") else ("TFLM", "tflm")
    )
    figures = verification.get(key, {})
    if name.endswith("agreement_ge_99pct"):
        return (
            f"{runtime}: {q} agrees with float on only "
            f"{figures['agreement_with_float']:.1%} of clips "
            f"(target {AGREEMENT_GOAL:.0%})"
        )
    if name.endswith("accuracy_drop_le_0.5_points"):
        return (
            f"{runtime}: {q} loses {figures['accuracy_drop_points']:.2f} accuracy "
            f"points against float (target <= {ACCURACY_DROP_GOAL:g})"
        )
    micro = verification.get("tflm", {})
    if name == "tflm_vs_litert_per_step_max_le_2_lsb":
        step = micro["max_diff_vs_litert"]["per_step"]
        return (
            "TFLite Micro and LiteRT differ by up to "
            f"{max(step['logits'], step['states']):g} LSB in one step "
            f"(target <= {LSB_GOAL:g})"
        )
    if name == "tflm_vs_litert_per_step_le_2_lsb_on_99pct_frames":
        return (
            f"TFLite Micro and LiteRT are within {LSB_GOAL:g} LSB on only "
            f"{micro['per_step_frames_within_goal']:.1%} of frames "
            f"(target {AGREEMENT_GOAL:.0%})"
        )
    return name


def format_report(report: dict, out_dir: str = "", clips: str = "verification") -> str:
    """Human-readable summary of a report.

    Args:
        report: the export's report (``report.json``).
        out_dir: the export folder, for the first line.
        clips: what the verification clips were (``"test"``, ``"calibration"``).

    Returns:
        The summary, one line per runtime, then the targets the model misses.
    """
    lines = [
        f"lmuformer-export: {report['quantization']} -> {out_dir}",
        f"  flash {report['model_bytes']} B, arena {report['arena_bytes_min']} B "
        f"(metadata: {report['arena_bytes']} B), "
        f"{report['macs_per_frame']} MACs/frame, ops {', '.join(report['ops'])}",
        "  states: "
        + ", ".join(f"{s['name']}={s['method']}" for s in report["states"]),
    ]
    if report.get("verification"):
        lines.append(_litert_line(report, clips))
        lines.extend(_tflm_lines(report, clips))
        lines.extend(f"  {note}" for note in report.get("notes", [])[1:])
        unmet = [name for name, ok in report.get("goals", {}).items() if not ok]
        if unmet:
            lines.append(
                "  Below target: " + "; ".join(_unmet_text(n, report) for n in unmet)
            )
    return "\n".join(lines)
