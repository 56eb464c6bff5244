"""Outputs: the table on stdout (and as .txt), the JSON of every figure, the PNG plots."""

from __future__ import annotations

import json
import math
from itertools import groupby
from pathlib import Path

from . import SCHEMA

_COLUMNS = ("initializer", "elements", "contender", "median", "GB/s", "% fill_", "speedup", "note")
_WIDTHS = (22, 11, 24, 10, 8, 8, 8, 0)

_SECTION_TITLES = {
    "sweep": "size sweep",
    "threads": "CPU threads",
    "small": "many small tensors (nn.Linear(256, 256).reset_parameters per layer)",
    "model": "model construction (LLaMA-7B decoder layer linears, no bias)",
    "headline": "headline figures (CPU, float32)",
}


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_elements(row: dict) -> str:
    numel = row["numel"]
    if row["section"] in ("headline", "sweep", "threads") and numel & (numel - 1) == 0:
        text = f"2^{int(math.log2(numel))}"
        shape = row["shape"]
        return (
            f"{shape[0]}x{shape[1]}"
            if row["initializer"] == "sparse_" and row["section"] == "headline"
            else text
        )
    return f"{numel / 1e6:.3g}M" if numel >= 1e6 else f"{numel:,}"


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _row_cells(row: dict) -> list[str]:
    note = row["note"]
    if row.get("us_per_param") is not None:
        note = f"{row['us_per_param']:.2f} us/param" + (f"; {note}" if note else "")
    if row.get("target_speedup"):
        verdict = "met" if row["target_met"] else "NOT met"
        note = f"target >= {row['target_speedup']:g}x: {verdict}" + (f"; {note}" if note else "")
    speedup = "base" if row["role"] == "baseline" else _cell(row["speedup"], ".2f")
    return [
        row["initializer"],
        fmt_elements(row),
        row["contender"],
        fmt_time(row["median_s"]),
        _cell(row["gbps"], ".2f"),
        _cell(row["pct_fill"], ".1f"),
        speedup if speedup in ("-", "base") else speedup + "x",
        note,
    ]


def _line(cells: list[str]) -> str:
    parts = []
    for cell, width, col in zip(cells, _WIDTHS, _COLUMNS, strict=True):
        right = col in ("median", "GB/s", "% fill_", "speedup")
        parts.append(cell.rjust(width) if right else cell.ljust(width))
    return "  ".join(parts).rstrip()


def _group_key(row: dict) -> tuple:
    return (row["section"], row["device"], row["dtype"], row["threads"])


def table_lines(header: list[str], rows: list[dict], skipped: list[dict]) -> list[str]:
    lines = list(header)
    for item in skipped:
        lines.append(f"skipped: {item['what']}: {item['reason']}")
    for (section, device, dtype, threads), group in groupby(rows, key=_group_key):
        group = list(group)
        where = f"{device}" + (f", {threads} threads" if threads else "")
        extra = group[0].get("scale_note", "")
        lines += [
            "",
            f"== {_SECTION_TITLES.get(section, section)} | {where} | {dtype}"
            + (f" | {extra}" if extra else "")
            + " ==",
            _line(list(_COLUMNS)),
        ]
        previous = None
        for row in group:
            key = (row["initializer"], row["numel"])
            if previous is not None and key != previous:
                lines.append("")
            previous = key
            lines.append(_line(_row_cells(row)))
    return lines


def headline_summary(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        if row.get("target_speedup") and row["speedup"] is not None:
            verdict = "met" if row["target_met"] else "NOT met"
            lines.append(
                f"{row['initializer']:<16} {row['contender']} vs {row['baseline']}: "
                f"{row['speedup']:.2f}x (target >= {row['target_speedup']:g}x: {verdict})"
            )
    return ["", "headline summary:", *lines] if lines else []


def write_json(path: Path, env: dict, config: dict, rows: list[dict], skipped: list[dict]) -> None:
    doc = {"schema": SCHEMA, "env": env, "config": config, "skipped": skipped, "rows": rows}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_bar_plot(out: Path, stem: str, rows: list[dict]) -> list[Path]:
    """The headline figures as bars: GB/s written per contender, one group per initializer."""
    rows = [r for r in rows if r["section"] == "headline" and r["gbps"]]
    if not rows:
        return []
    plt = _pyplot()
    names = list(dict.fromkeys(r["initializer"] for r in rows))
    roles = ("ceiling", "baseline", "peer", "pyinit")
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for i, name in enumerate(names):
        group = sorted(
            (r for r in rows if r["initializer"] == name), key=lambda r: roles.index(r["role"])
        )
        width = 0.8 / len(group)
        for j, r in enumerate(group):
            x = i - 0.4 + (j + 0.5) * width
            color = {"ceiling": "black", "baseline": "C0", "peer": "C2"}.get(r["role"], "C1")
            color = "C3" if r["stream"] == "philox" else color
            ax.bar(x, r["gbps"], width * 0.9, color=color)
            ax.text(
                x,
                r["gbps"] * 1.08,
                r["contender"],
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=7,
            )
    firsts = [next(r for r in rows if r["initializer"] == n) for n in names]
    ax.set_xticks(
        range(len(names)), [f"{r['initializer']}\n{fmt_elements(r)}" for r in firsts], fontsize=8
    )
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 8)
    ax.set_ylabel("GB/s written")
    ax.set_title(
        "headline figures, CPU float32 (black: fill_ ceiling, blue: baseline, "
        "orange/red: pyinit torch/philox)",
        fontsize=10,
    )
    ax.grid(True, axis="y", which="both", alpha=0.25)
    fig.tight_layout()
    path = out / f"{stem}-cpu.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def write_plots(out: Path, stem: str, rows: list[dict]) -> list[Path]:
    """One PNG per device: GB/s against elements per initializer, the fill_ ceiling dashed."""
    plt = _pyplot()
    paths = write_bar_plot(out, stem, rows)
    sweep = [r for r in rows if r["section"] == "sweep" and r["gbps"]]
    for device in sorted({r["device"] for r in sweep}):
        drows = [r for r in sweep if r["device"] == device]
        names = list(dict.fromkeys(r["initializer"] for r in drows))
        labels = list(dict.fromkeys(r["contender"] for r in drows if r["role"] != "ceiling"))
        colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
        dtypes = list(dict.fromkeys(r["dtype"] for r in drows))
        markers = {d: "os^vD"[i % 5] for i, d in enumerate(dtypes)}
        ncols = min(4, len(names))
        nrows = math.ceil(len(names) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
        for ax, name in zip(axes.flat, names, strict=False):
            for (label, dtype), series in groupby(
                sorted(
                    (r for r in drows if r["initializer"] == name),
                    key=lambda r: (r["contender"], r["dtype"], r["numel"]),
                ),
                key=lambda r: (r["contender"], r["dtype"]),
            ):
                series = list(series)
                xs = [r["numel"] for r in series]
                ys = [r["gbps"] for r in series]
                if label == "fill_":
                    style = {"color": "black", "linestyle": "--", "linewidth": 1.2}
                else:
                    style = {"color": colors[label], "linewidth": 1.5}
                ax.plot(
                    xs,
                    ys,
                    marker=markers[dtype],
                    markersize=3.5,
                    label=f"{label} ({dtype})",
                    **style,
                )
            ax.set_title(name, fontsize=10)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("elements", fontsize=8)
            ax.set_ylabel("GB/s written", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="both", alpha=0.25)
        for ax in list(axes.flat)[len(names) :]:
            ax.set_visible(False)
        handles, legend_labels = [], []
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in legend_labels:
                    handles.append(h)
                    legend_labels.append(lab)
        fig.legend(
            handles,
            legend_labels,
            loc="lower center",
            ncol=min(4, len(handles)),
            fontsize=8,
            frameon=False,
        )
        threads = drows[0]["threads"]
        where = f"{device}, {threads} threads" if threads else device
        fig.suptitle(f"pyinit vs torch.nn.init: GB/s written ({where}; dashed: fill_ ceiling)")
        fig.tight_layout(rect=(0, 0.015 + 0.022 * math.ceil(len(handles) / 4), 1, 0.97))
        path = out / f"{stem}-{device}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
