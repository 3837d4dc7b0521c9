#!/usr/bin/env python3
"""Turns a benchmark results table into an SVG grouped bar chart (Python 3 standard library only).

One group of bars per table row, one bar per numeric column (engine / target), a value label on
every bar, labelled axes, a legend and a title. Writes a PNG next to the SVG as well when
`--png` is given and `rsvg-convert` (Debian: librsvg2-bin) is installed.

Input: a Markdown table (the first one in the file, or --table N), or a TSV/CSV file with a header
row. Lines starting with `#` in a TSV/CSV are metadata (`# key<TAB>value` or `# key: value`), used
for the title. The first column labels the groups; every column whose cells are all numbers (or
empty / `–` / `n/a`) becomes a series. Columns named `a/b` where `a` and `b` are other series are
ratio columns and are left out. A unit shared by all series headers (`slice µs/op`,
`leveldb µs/op`) is taken off the series names and shown on the y axis.

The y axis is linear, or logarithmic when the largest value is over 100x the smallest
(--log / --linear to choose). Hovering over a bar in a browser shows its value and source cell.

Modes:
  --compare   results of Benchmarks/compare.sh (its TSV of medians or its Markdown table):
              micros/op turned into throughput in K ops/s (1000 / µs), higher is better.
  --fs        results of Benchmarks/fs_bench.sh (workload rows; slice, passthrough_ll and local
              columns). If the rows carry different units (per-row units in the cells or in the
              label, e.g. `seq write (MB/s)`), each row is shown relative to `local`; rows
              measured in time (s, ms, µs/op) are then shown as speed (local / value), so
              above 1 always means faster than local. Cells such as `900 MB/s` next to
              `1.5 GB/s` are converted to one unit.
  (default)   any Markdown table with numeric columns, as is.

Examples:
  python3 Benchmarks/chart.py --compare /tmp/slice-compare/compare.tsv --png
  python3 Benchmarks/chart.py --fs fs.md -o fs.svg --png
  python3 Benchmarks/chart.py table.md --columns slice,local --invert 1000 \\
      --ylabel "K ops/s" --better higher --log -o table.svg
"""
import argparse
import math
import os
import re
import shutil
import subprocess
import sys
from xml.sax.saxutils import escape

MISSING = {"", "–", "—", "-", "n/a", "na", "N/A", "NA", "nan", "none", "None", "?"}

PRETTY = {"slice": "Slice", "leveldb": "LevelDB", "rocksdb": "RocksDB", "lmdb": "LMDB"}
# Okabe-Ito colours (colour-blind safe); known series keep their colour across charts.
KNOWN_COLOURS = {
    "slice": "#D55E00",
    "leveldb": "#0072B2",
    "rocksdb": "#009E73",
    "lmdb": "#CC79A7",
    "passthrough_ll": "#56B4E9",
    "local": "#7F7F7F",
}
PALETTE = ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F7F7F", "#F0E442"]
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
CHAR_W = 0.6  # average glyph width / font size (DejaVu Sans digits are ~0.64)


def fail(msg):
    print(f"chart.py: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- reading tables


class Table:
    def __init__(self, header, rows, meta, heading=None):
        self.header, self.rows, self.meta, self.heading = header, rows, meta, heading


def clean_cell(cell):
    cell = cell.strip().replace("\\|", "|")
    cell = re.sub(r"\*\*(.*?)\*\*|__(.*?)__", lambda m: m.group(1) or m.group(2), cell)
    cell = re.sub(r"`([^`]*)`", r"\1", cell)
    return cell.strip()


def split_md_row(line):
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [clean_cell(c) for c in re.split(r"(?<!\\)\|", line)]


def is_separator(cells):
    return bool(cells) and all(re.fullmatch(r":?-{1,}:?", c.replace(" ", "")) for c in cells)


def read_markdown(lines, which):
    tables, heading, cur, cur_heading = [], None, [], None
    for line in lines + [""]:
        s = line.strip()
        if s.startswith("|"):
            if not cur:
                cur_heading = heading
            cur.append(s)
            continue
        if cur:
            tables.append((cur, cur_heading))
            cur = []
        if s.startswith("#"):
            heading = s.lstrip("#").strip()
    meta = {}
    text = "\n".join(lines)
    m = re.search(r"\b(\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?(?: ?UTC|Z)?)?)", text)
    if m:
        meta["date"] = m.group(1)
    m = re.search(r"[Mm]edians? (?:over|of) (\d+) rounds?", text)
    if m:
        meta["rounds"] = m.group(1)
    parsed = []
    for block, head in tables:
        rows = [split_md_row(l) for l in block]
        if len(rows) >= 2 and is_separator(rows[1]):
            header, body = rows[0], [r for r in rows[2:] if not is_separator(r)]
            parsed.append(Table(header, body, meta, head))
    if not parsed:
        fail("no Markdown table found")
    if which < 1 or which > len(parsed):
        fail(f"--table {which}: the input has {len(parsed)} table(s)")
    return parsed[which - 1]


def read_delimited(lines):
    meta, data = {}, []
    for line in lines:
        if not line.strip():
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            m = re.match(r"([\w.-]+)\s*(?:\t|:|=)\s*(.*)$", body)
            if m:
                meta[m.group(1).lower()] = m.group(2).strip()
            continue
        data.append(line.rstrip("\n"))
    if not data:
        fail("no header row found")
    sep = "\t" if "\t" in data[0] else ","
    rows = [[clean_cell(c) for c in l.split(sep)] for l in data]
    return Table(rows[0], rows[1:], meta)


def transpose(table):
    width = max(len(table.header), *(len(r) for r in table.rows)) if table.rows else len(table.header)
    grid = [table.header + [""] * (width - len(table.header))] + \
        [r + [""] * (width - len(r)) for r in table.rows]
    cols = [list(c) for c in zip(*grid)]
    return Table(cols[0], cols[1:], table.meta, table.heading)


def read_table(path, which=1):
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    lines = text.splitlines()
    if any(l.strip().startswith("|") for l in lines):
        return read_markdown(lines, which)
    return read_delimited(lines)


NUM_RE = re.compile(r"^[~≈<>]?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*)$")


def parse_number(cell):
    """(value, unit suffix) or None for a missing cell; raises ValueError for text."""
    c = cell.strip()
    if c in MISSING:
        return None
    # Compound cells ("5,231/s · 21.4 MB/s", "65,547 IOPS; 268 MB/s"): the first figure counts.
    c = re.split(r"\s+[·;|]\s+", c)[0].strip()
    c = re.sub(r"(?<=\d)[,_\u2009\u202f](?=\d{3}\b)", "", c)  # 1,234,567 / 1_234 / thin spaces
    m = NUM_RE.match(c)
    if not m:
        raise ValueError(cell)
    value, unit = float(m.group(1)), m.group(2).strip()
    mult = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}.get(unit)
    if mult:
        value, unit = value * mult, ""
    if unit in ("×", "x"):
        unit = "×"
    elif unit.startswith("/"):  # "5,231/s"
        unit = "ops" + unit
    return value, unit


# ---------------------------------------------------------------- the chart model


class Series:
    def __init__(self, key, name, values, raw):
        self.key, self.name, self.values, self.raw = key, name, values, raw


def is_ratio_header(h, names):
    m = re.fullmatch(r"\s*([\w.+-]+)\s*[/÷]\s*([\w.+-]+)\s*", h)
    return bool(m) and m.group(1).lower() in names and m.group(2).lower() in names


def common_unit(headers):
    """`slice µs/op`, `leveldb µs/op` -> ('µs/op', ['slice', 'leveldb']); `x (MB/s)` too."""
    if len(headers) < 1:
        return None, headers
    parts = []
    for h in headers:
        m = re.fullmatch(r"(.+?)\s*\(([^()]+)\)\s*", h) or re.fullmatch(r"(.+?)\s+(\S+)", h)
        if not m:
            return None, headers
        parts.append((m.group(1).strip(), m.group(2).strip()))
    units = {u for _, u in parts}
    if len(units) == 1 and (len(headers) > 1 or re.search(r"/|s$|%", parts[0][1])):
        return units.pop(), [n for n, _ in parts]
    return None, headers


UNIT_FAMILIES = [
    {"B/s": 1, "KB/s": 1e3, "kB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9,
     "KiB/s": 1024, "MiB/s": 2 ** 20, "GiB/s": 2 ** 30},
    {"B": 1, "KB": 1e3, "kB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024, "MiB": 2 ** 20, "GiB": 2 ** 30},
    {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "min": 60},
    {"ops/s": 1, "K ops/s": 1e3, "Kops/s": 1e3, "kops/s": 1e3, "M ops/s": 1e6, "Mops/s": 1e6},
]


def unit_family(u):
    return next((f for f in UNIT_FAMILIES if u in f), None)


def is_time_unit(u):
    """Units where lower is better: s, ms, µs/op, ns per op..."""
    return bool(u) and bool(re.fullmatch(r"(ns|µs|us|micros|ms|s|sec|secs|seconds?|min)(\s*/\s*\w+)?", u.strip()))


def is_size_unit(u):
    """Memory or disk sizes (RSS, space used): lower is better too."""
    return bool(u) and u.strip() in UNIT_FAMILIES[1]


def is_rate_unit(u):
    """Throughput units: higher is better."""
    return bool(u) and ("/s" in u or u.strip().upper() in ("IOPS", "OPS", "TPS", "QPS"))


def lower_is_better(u):
    return is_time_unit(u) or is_size_unit(u)


def looks_like_unit(u):
    u = u.strip()
    return bool(u) and ("/" in u or unit_family(u) is not None or is_rate_unit(u) or is_time_unit(u)
                        or u in ("%", "×", "x"))


def row_unit_from_label(label):
    """`seq write (MB/s)` or `readdir 10,000 entries, entries/s` -> the unit; `stat (warm)` -> None."""
    m = re.search(r"\(([^()]*)\)\s*$", label) or re.search(r",\s*([^,]*)$", label)
    return m.group(1).strip() if m and looks_like_unit(m.group(1)) else None


def build_series(table, args):
    header = table.header
    width = max(len(header), *(len(r) for r in table.rows)) if table.rows else len(header)
    header = header + [f"col{i + 1}" for i in range(len(header), width)]
    rows = [r + [""] * (width - len(r)) for r in table.rows]
    if args.label_column not in range(width):
        fail(f"--label-column {args.label_column} out of range")
    groups = [r[args.label_column] for r in rows]

    parsed, cell_units = {}, {}
    for j, h in enumerate(header):
        if j == args.label_column:
            continue
        vals, units, ok = [], [], True
        for r in rows:
            try:
                p = parse_number(r[j])
            except ValueError:
                ok = False
                break
            vals.append(None if p is None else p[0])
            units.append(None if p is None else p[1])
        if ok and any(v is not None for v in vals):
            parsed[j], cell_units[j] = vals, units

    if args.columns:
        wanted = [c.strip() for c in args.columns.split(",") if c.strip()]
        _, short = common_unit([header[j] for j in parsed])
        by_name = {}
        for j, s in zip(parsed, short):
            by_name.setdefault(header[j].lower(), j)
            by_name.setdefault(s.lower(), j)
            by_name.setdefault(re.split(r"[\s(]", header[j].strip(), maxsplit=1)[0].lower(), j)
        cols = []
        for w in wanted:
            if w.lower() not in by_name:
                fail(f"--columns: no numeric column {w!r} (numeric columns: "
                     + ", ".join(header[j] for j in parsed) + ")")
            cols.append(by_name[w.lower()])
    else:
        cols = list(parsed)
        if args.exclude:
            cols = [j for j in cols if not re.search(args.exclude, header[j])]
        names = {re.split(r"[\s(]", header[j].strip(), maxsplit=1)[0].lower() for j in cols}
        cols = [j for j in cols if not is_ratio_header(header[j], names)]
    if not cols:
        fail("no numeric columns to chart (headers: " + ", ".join(header) + ")")

    unit, short = common_unit([header[j] for j in cols])
    if unit is None:
        unit = table.meta.get("unit")
    # Units written in the cells ("12.3 MB/s") or in the row labels ("seq write (MB/s)").
    row_units = []
    for i, g in enumerate(groups):
        us = [cell_units[j][i] for j in cols if cell_units[j][i]]
        if len(set(us)) > 1:
            fams = {id(unit_family(u)) for u in us}
            fam = unit_family(us[0])
            if fam is not None and len(fams) == 1:  # "900 MB/s" next to "1.5 GB/s": convert
                target = max(set(us), key=us.count)
                for j in cols:
                    u = cell_units[j][i]
                    if u and parsed[j][i] is not None:
                        parsed[j][i] *= fam[u] / fam[target]
                        cell_units[j][i] = target
                us = [target]
            else:
                print(f"chart.py: warning: row {g!r} mixes units ({', '.join(sorted(set(us)))}); "
                      "its bars are not comparable", file=sys.stderr)
        row_units.append(us[0] if len(set(us)) == 1 else row_unit_from_label(g))
    distinct = {u for u in row_units if u}
    mixed = len(distinct) > 1
    if unit is None and len(distinct) == 1:
        unit = distinct.pop()

    series = []
    for j, s in zip(cols, short):
        series.append(Series(s.lower(), PRETTY.get(s.lower(), s), list(parsed[j]),
                             [rows[i][j] for i in range(len(rows))]))
    if args.order:
        order = [o.strip().lower() for o in args.order.split(",")]
        series.sort(key=lambda s: order.index(s.key) if s.key in order else len(order))
    return groups, series, unit, row_units, mixed


# ---------------------------------------------------------------- formatting


def fmt_value(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a == 0:
        return "0"
    if a >= 0.1:
        return f"{v:.2f}"
    return f"{v:.2g}"


def fmt_tick(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6 and a % 1e6 == 0:
        return f"{v / 1e6:g}M"
    if a >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


def text_w(s, size):
    return len(s) * size * CHAR_W


def wrap(label, width, size):
    """The label on at most two lines of at most `width` px, or None if it cannot be."""
    if text_w(label, size) <= width:
        return [label]
    words = label.split()
    best = None
    for k in range(1, len(words)):  # the most even split that fits
        a, b = " ".join(words[:k]), " ".join(words[k:])
        w = max(text_w(a, size), text_w(b, size))
        if w <= width and (best is None or w < best[0]):
            best = (w, [a, b])
    return best[1] if best else None


def nice_step(span, target=6):
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


# ---------------------------------------------------------------- SVG


def value_axis(series, n_g, extent, label_len, log_opt):
    """Scale for the value axis: (scale(v) -> px from the axis base, ticks, log?, base value).
    label_len[k][i]: px the value label of bar (k, i) needs beyond the bar's end."""
    vals = [v for s in series for v in s.values if v is not None]
    if not vals:
        fail("every cell is empty")
    vmax = max(vals)
    log = log_opt
    if log == "auto":
        pos = [v for v in vals if v > 0]
        log = bool(pos) and len(pos) == len(vals) and max(pos) / min(pos) > 100
    if log and min(vals) <= 0:
        print("chart.py: --log needs positive values; using a linear axis", file=sys.stderr)
        log = False
    bars = [(s.values[i], label_len[k][i]) for k, s in enumerate(series) for i in range(n_g)
            if s.values[i] is not None]
    if log:
        e = math.floor(math.log10(min(vals)))
        # The axis starts at 1, 2 or 5 x 10^e, just below the smallest value.
        lo = max(m * 10 ** e for m in (1, 2, 5) if m * 10 ** e <= min(vals) * 1.000001)
        lo_e = math.log10(lo)
        top = math.ceil(math.log10(vmax) * 4) / 4 if vmax > lo else math.floor(lo_e) + 1
        # Grow the top until every value label fits.
        while any(extent * (math.log10(v) - lo_e) / (top - lo_e) + ll > extent for v, ll in bars):
            top += 0.25

        def scale(v):
            return extent * (math.log10(max(v, lo)) - lo_e) / (top - lo_e)
        mults = (1, 2, 5) if top - lo_e <= 3.01 else (1,)
        ticks = [m * 10 ** e for e in range(math.floor(lo_e), math.floor(top) + 1) for m in mults
                 if lo * 0.9999 <= m * 10 ** e <= 10 ** top * 1.0001]
        if not ticks or ticks[0] > lo * 1.0001:
            ticks.insert(0, lo)
        return scale, ticks, True, lo
    base = min(0.0, min(vals))
    need = vmax
    for v, ll in bars:
        if v > 0:
            need = max(need, v / max(1 - ll / extent, 0.2))
    step = nice_step(need - base)
    hi = max(math.ceil(need / step - 1e-9) * step, step)

    def scale(v):
        return extent * (v - base) / (hi - base)
    ticks, t = [], math.ceil(base / step) * step
    while t <= hi + step * 1e-6:
        ticks.append(round(t, 10))
        t += step
    return scale, ticks, False, base


class Svg:
    def __init__(self):
        self.parts = []

    def add(self, s):
        self.parts.append(s)

    def text(self, x, y, s, size, fill="#222", anchor="start", weight=None, rotate=None):
        extra = f' text-anchor="{anchor}"' if anchor != "start" else ""
        extra += f' font-weight="{weight}"' if weight else ""
        extra += f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}"{extra}>{escape(s)}</text>')

    def line(self, x1, y1, x2, y2, stroke, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
                 f'stroke-width="1"{d}/>')

    def rect(self, x, y, w, h, fill, tip=None):
        t = f"<title>{escape(tip)}</title>" if tip else ""
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="{max(h, 0.5):.1f}" '
                 f'fill="{fill}">{t}</rect>')


def header_block(svg, opts, series, left, width):
    """Title, subtitle and legend from the top; returns the y where the plot may start."""
    title, subtitle = opts.get("title", ""), opts.get("subtitle", "")
    svg.text(left, 26, title, 17, weight="bold")
    y = 34
    if subtitle:
        svg.text(left, 48, subtitle, 12, fill="#555")
        y = 54
    lx, ly = left, y + 8
    for s in series:
        w = 18 + text_w(s.name, 12) + 18
        if lx > left and lx + w > width - 10:
            lx, ly = left, ly + 22
        svg.add(f'<rect x="{lx:.1f}" y="{ly:.1f}" width="12" height="12" fill="{s.colour}" rx="2"/>')
        svg.text(lx + 18, ly + 10.5, s.name, 12)
        lx += w
    return ly + 12 + 16


def legend_height(series, left, width):
    lx, rows = left, 1
    for s in series:
        w = 18 + text_w(s.name, 12) + 18
        if lx > left and lx + w > width - 10:
            lx, rows = left, rows + 1
        lx += w
    return rows


def bar_tip(s, g, i, label, opts):
    tip = f"{s.name} · {g}: {label}"
    if s.raw[i] and s.raw[i] != label:
        tip += f" ({s.raw[i]}{(' ' + opts['raw_unit']) if opts.get('raw_unit') and not re.search('[A-Za-zµ/]', s.raw[i]) else ''})"
    return tip


def render(groups, series, opts):
    """opts: title, subtitle, ylabel (value axis), xlabel (group axis), log (True/False/"auto"),
    log_note, reference (value of a dashed line or None), suffix (after value labels),
    group_notes (small line under each group label), raw_unit (for tooltips),
    orientation ("vertical", "horizontal" or "auto")."""
    n_g, n_s = len(groups), len(series)
    labels = [[fmt_value(s.values[i]) + opts.get("suffix", "") if s.values[i] is not None else "n/a"
               for i in range(n_g)] for s in series]
    notes = opts.get("group_notes") or [""] * n_g
    orientation = opts.get("orientation", "auto")
    if orientation == "auto":
        # Long group labels (or many bars) read better on a horizontal chart.
        vertical_ok = n_g * n_s <= 48 and all(
            wrap(g, max(n_s * 30 + 24, 110) - 6, 13) is not None for g in groups)
        orientation = "vertical" if vertical_ok else "horizontal"
    if orientation == "horizontal":
        return render_horizontal(groups, series, labels, notes, opts)
    return render_vertical(groups, series, labels, notes, opts)


def render_vertical(groups, series, labels, notes, opts):
    n_g, n_s = len(groups), len(series)
    val_size, tick_size, group_size = 11, 12, 13
    longest = max(text_w(l, val_size) for row in labels for l in row)
    # Bars wide enough for horizontal value labels, or narrow bars with vertical labels.
    bw, rotate_vals = max(18.0, longest + 6), False
    if bw > 46 or n_g * n_s * bw * 1.4 > 1100:
        bw, rotate_vals = 22.0, True
    gap = max(bw * 1.1, 24.0)
    plot_w = max(n_g * (n_s * bw + gap), 420.0)
    group_w = plot_w / n_g
    plot_h = 340.0

    # Group labels: on one or two lines under the group, or rotated when they do not fit.
    group_lines = [wrap(g, group_w - 6, group_size) for g in groups]
    rotate_groups = any(l is None for l in group_lines)
    xlabel = opts.get("xlabel")
    if rotate_groups:
        rotated = [g + (f" · {n}" if n else "") for g, n in zip(groups, notes)]
        bottom = 30 + max(text_w(t, group_size) for t in rotated) * 0.643 + 8
    else:
        n_lines = max(len(l) for l in group_lines) + (1 if any(notes) else 0)
        bottom = 18 + 16 * n_lines
    bottom += 26 if xlabel else 0

    label_len = [[(text_w(labels[k][i], val_size) if rotate_vals else val_size) + 8
                  for i in range(n_g)] for k in range(n_s)]
    scale, ticks, log, base = value_axis(series, n_g, plot_h, label_len, opts.get("log"))
    ylabel = opts.get("ylabel", "") + (", log scale" if log and opts.get("log_note") else "")

    left = 30 + max(text_w(fmt_tick(t), tick_size) for t in ticks) + 12
    if rotate_groups:  # rotated labels of the first groups reach left of the plot
        left = max([left] + [0.766 * text_w(t, group_size) - (i + 0.5) * group_w + 10
                             for i, t in enumerate(rotated)])
    width = max(left + plot_w + 24, left + text_w(opts.get("title", ""), 17) + 10,
                left + text_w(opts.get("subtitle", ""), 12) + 10)
    rows = legend_height(series, left, width)
    plot_top = (54 if opts.get("subtitle") else 34) + 8 + 22 * rows + 14
    height = plot_top + plot_h + bottom
    x0, y0 = left, plot_top + plot_h  # origin: bottom-left of the plot area

    svg = Svg()
    svg.add('<?xml version="1.0" encoding="UTF-8"?>')
    svg.add(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}">')
    svg.add(f"<title>{escape(opts.get('title', ''))}</title>")
    svg.add(f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>')
    header_block(svg, opts, series, left, width)

    for t in ticks:  # grid and value ticks
        y = y0 - scale(t)
        svg.line(x0, y, x0 + plot_w, y, "#bbb" if t == 0 else "#e6e6e6")
        svg.text(x0 - 8, y + 4, fmt_tick(t), tick_size, fill="#444", anchor="end")
    if ylabel:
        cy = plot_top + plot_h / 2
        svg.text(18, cy, ylabel, 13, anchor="middle", rotate=-90)

    zero_y = y0 - scale(max(0.0, base) if not log else base)
    for i, g in enumerate(groups):
        gx = x0 + i * group_w + (group_w - n_s * bw) / 2
        for k, s in enumerate(series):
            v, bx = s.values[i], gx + k * bw
            cx = bx + bw / 2
            if v is None:
                svg.text(cx, zero_y - 4, "n/a", 9, fill="#999", anchor="middle")
                continue
            yv = y0 - scale(v)
            top_, h = min(yv, zero_y), abs(zero_y - yv)
            svg.rect(bx + 1, top_, bw - 2, h, s.colour, bar_tip(s, g, i, labels[k][i], opts))
            if rotate_vals:
                svg.text(cx + 4, top_ - 5, labels[k][i], val_size, rotate=-90)
            else:
                svg.text(cx, top_ - 4, labels[k][i], val_size, anchor="middle")
        gcx = x0 + i * group_w + group_w / 2
        if rotate_groups:
            svg.text(gcx, y0 + 16, rotated[i], group_size, anchor="end", rotate=-40)
        else:
            ty = y0 + 19
            for line in group_lines[i]:
                svg.text(gcx, ty, line, group_size, anchor="middle")
                ty += 16
            if notes[i]:
                svg.text(gcx, ty - 1, notes[i], 11, fill="#666", anchor="middle")
    ref = opts.get("reference")
    if ref is not None and (not log or ref > 0):
        y = y0 - scale(ref)
        svg.line(x0, y, x0 + plot_w, y, "#333", dash="5 4")
    if xlabel:
        svg.text(x0 + plot_w / 2, height - 10, xlabel, 13, anchor="middle")
    svg.line(x0, plot_top, x0, y0, "#333")
    svg.line(x0, y0, x0 + plot_w, y0, "#333")
    svg.add("</svg>")
    return "\n".join(svg.parts) + "\n"


def render_horizontal(groups, series, labels, notes, opts):
    """Groups down the left side, bars growing to the right: for long workload names."""
    n_g, n_s = len(groups), len(series)
    val_size, tick_size, group_size = 11, 12, 13
    bh, gap = 15.0, 14.0
    max_label_w = 300.0
    group_lines = []
    for g in groups:
        lines = wrap(g, max_label_w, group_size)
        if lines is None:  # hard cut into two lines
            cut = int(max_label_w / (group_size * CHAR_W))
            lines = [g[:cut], g[cut:2 * cut - 1] + ("…" if len(g) > 2 * cut - 1 else "")]
        group_lines.append(lines)
    label_w = max(max(text_w(l, group_size) for l in ls) for ls in group_lines)
    label_w = max(label_w, max((text_w(n, 11) for n in notes), default=0))
    group_h = [max(n_s * bh, 16 * (len(ls) + (1 if n else 0))) + gap
               for ls, n in zip(group_lines, notes)]
    plot_h = sum(group_h)
    plot_w = 620.0
    label_len = [[text_w(labels[k][i], val_size) + 8 for i in range(n_g)] for k in range(n_s)]
    scale, ticks, log, base = value_axis(series, n_g, plot_w, label_len, opts.get("log"))
    vlabel = opts.get("ylabel", "") + (", log scale" if log and opts.get("log_note") else "")

    left = 16 + label_w + 12
    width = max(left + plot_w + 30, left + text_w(opts.get("title", ""), 17) + 10,
                left + text_w(opts.get("subtitle", ""), 12) + 10)
    rows = legend_height(series, left, width)
    glabel = opts.get("xlabel")
    plot_top = (54 if opts.get("subtitle") else 34) + 8 + 22 * rows + 14 + (18 if glabel else 0)
    height = plot_top + plot_h + 26 + (26 if vlabel else 0)
    x0, y0 = left, plot_top

    svg = Svg()
    svg.add('<?xml version="1.0" encoding="UTF-8"?>')
    svg.add(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}">')
    svg.add(f"<title>{escape(opts.get('title', ''))}</title>")
    svg.add(f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>')
    header_block(svg, opts, series, 16, width)
    if glabel:  # the group axis' name, over the group labels
        svg.text(x0 - 10, plot_top - 8, glabel, 13, anchor="end", weight="bold")

    bottom_y = y0 + plot_h
    gy = y0
    for i in range(n_g):  # zebra stripes help follow a row
        if i % 2:
            svg.add(f'<rect x="4" y="{gy:.1f}" width="{x0 + plot_w - 4:.1f}" height="{group_h[i]:.1f}" '
                    f'fill="#f5f5f5"/>')
        gy += group_h[i]
    for t in ticks:
        x = x0 + scale(t)
        svg.line(x, y0, x, bottom_y, "#bbb" if t == 0 else "#e3e3e3")
        svg.text(x, bottom_y + 16, fmt_tick(t), tick_size, fill="#444", anchor="middle")
    if vlabel:
        svg.text(x0 + plot_w / 2, bottom_y + 40, vlabel, 13, anchor="middle")

    zero_x = x0 + scale(max(0.0, base) if not log else base)
    gy = y0
    for i, g in enumerate(groups):
        by = gy + (group_h[i] - n_s * bh) / 2
        for k, s in enumerate(series):
            v, y = s.values[i], by + k * bh
            if v is None:
                svg.text(zero_x + 4, y + bh - 4, "n/a", 9, fill="#999")
                continue
            xv = x0 + scale(v)
            svg.rect(min(xv, zero_x), y + 1, abs(xv - zero_x), bh - 2, s.colour,
                     bar_tip(s, g, i, labels[k][i], opts))
            svg.text(max(xv, zero_x) + 4, y + bh - 4, labels[k][i], val_size)
        lines = group_lines[i] + ([notes[i]] if notes[i] else [])
        ty = gy + group_h[i] / 2 - 16 * len(lines) / 2 + 12
        for j, line in enumerate(lines):
            is_note = notes[i] and j == len(lines) - 1
            svg.text(x0 - 10, ty, line, 11 if is_note else group_size,
                     fill="#666" if is_note else "#222", anchor="end")
            ty += 16
        gy += group_h[i]
    ref = opts.get("reference")
    if ref is not None and (not log or ref > 0):
        x = x0 + scale(ref)
        svg.line(x, y0, x, bottom_y, "#333", dash="5 4")
    svg.line(x0, y0, x0, bottom_y, "#333")
    svg.line(x0, bottom_y, x0 + plot_w, bottom_y, "#333")
    svg.add("</svg>")
    return "\n".join(svg.parts) + "\n"



# ---------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Markdown / TSV benchmark table -> SVG grouped bar chart (optionally PNG).",
        epilog="See the module docstring (head -40 Benchmarks/chart.py) for the input format.")
    p.add_argument("input", help="Markdown or TSV/CSV file ('-' for stdin)")
    p.add_argument("-o", "--output", help="SVG path (default: input with .svg; '-' for stdout)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--compare", action="store_true",
                      help="compare.sh results: µs/op -> K ops/s, engines Slice/LevelDB/RocksDB/LMDB")
    mode.add_argument("--fs", action="store_true",
                      help="fs_bench.sh results: workload rows, slice/passthrough_ll/local columns")
    p.add_argument("--png", action="store_true",
                   help="also write a PNG next to the SVG with rsvg-convert (librsvg2-bin), if installed")
    p.add_argument("--png-output", metavar="PATH", help="PNG path (implies --png)")
    p.add_argument("--table", type=int, default=1, help="which Markdown table in the file (1-based)")
    p.add_argument("--transpose", action="store_true",
                   help="groups are the columns and series the rows (swap before charting)")
    p.add_argument("--label-column", type=int, default=0, help="column with the group labels (0-based)")
    p.add_argument("--columns", help="comma-separated series columns (default: all numeric ones)")
    p.add_argument("--exclude", help="regex: leave out numeric columns whose header matches")
    p.add_argument("--order", help="comma-separated series order (by short name)")
    p.add_argument("--invert", type=float, metavar="K", help="plot K / value (e.g. 1000: µs/op -> K ops/s)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply values by this")
    p.add_argument("--normalize", metavar="COLUMN", help="plot each row relative to this series (×)")
    scale_mode = p.add_mutually_exclusive_group()
    scale_mode.add_argument("--log", dest="log", action="store_const", const=True, default="auto",
                            help="logarithmic y axis (default: log when the largest value is "
                                 "over 100x the smallest)")
    scale_mode.add_argument("--linear", dest="log", action="store_const", const=False,
                            help="linear y axis")
    orient = p.add_mutually_exclusive_group()
    orient.add_argument("--horizontal", dest="orientation", action="store_const", const="horizontal",
                        default="auto", help="bars grow to the right, group labels on the left "
                        "(default: when group labels are too long to sit under vertical bars)")
    orient.add_argument("--vertical", dest="orientation", action="store_const", const="vertical")
    p.add_argument("--better", choices=["higher", "lower"], help="note on the y axis label")
    p.add_argument("--title")
    p.add_argument("--subtitle")
    p.add_argument("--ylabel")
    p.add_argument("--xlabel", help="x axis label (default: the label column's header; '' for none)")
    args = p.parse_args(argv)

    table = read_table(args.input, args.table)
    if args.transpose:
        table = transpose(table)
    if args.fs and not args.order:
        args.order = "slice,passthrough_ll,local"
    if args.compare and not args.order:
        args.order = "slice,leveldb,rocksdb,lmdb"
    groups, series, unit, row_units, mixed = build_series(table, args)
    if not groups:
        fail("the table has no rows")
    meta = table.meta
    for k, s in enumerate(series):
        s.colour = KNOWN_COLOURS.get(s.key) or PALETTE[(k + 2) % len(PALETTE)]
    used = [s.colour for s in series]
    if len(set(used)) < len(used):  # unknown names collided with known colours
        for k, s in enumerate(series):
            s.colour = PALETTE[k % len(PALETTE)]

    raw_unit = unit
    ylabel, title, subtitle, suffix, ref, notes = None, None, None, "", None, None
    better = args.better
    invert = args.invert
    normalize = args.normalize
    if args.compare:
        src_unit = (unit or meta.get("unit") or "µs/op").replace("micros/op", "µs/op")
        raw_unit = src_unit
        if invert is None and re.search(r"(µs|us|micros)/op", src_unit):
            invert = 1000.0
        if invert:
            ylabel, better = "throughput, K ops/s", better or "higher"
        engines = [s.name for s in series]
        title = f"{engines[0]} vs " + ", ".join(engines[1:]) + ": db_bench throughput" \
            if len(engines) > 1 else f"{engines[0]}: db_bench throughput"
        bits = []
        rounds = meta.get("rounds")
        if rounds:
            bits.append(f"median of {rounds} round{'s' if rounds != '1' else ''}")
        else:
            bits.append("medians")
        if meta.get("num"):
            bits.append(f"num={int(meta['num']):,} entries")
        if meta.get("key_size") and meta.get("value_size"):
            bits.append(f"{meta['key_size']}-byte keys, {meta['value_size']}-byte values")
        if meta.get("date"):
            bits.append(meta["date"])
        if meta.get("host"):
            bits.append(meta["host"])
        subtitle = " · ".join(bits)
    elif args.fs:
        for s in series:
            if s.key == "slice":
                s.name = "SliceFS"
        names = [s.name for s in series]
        title = " vs ".join(names) + ": filesystem benchmark"
        if mixed and not normalize and any(s.key == "local" for s in series):
            normalize = "local"
            print("chart.py: rows have different units; showing each row relative to local "
                  "(use --normalize COLUMN to choose the baseline)", file=sys.stderr)
        if not normalize and not invert and lower_is_better(unit):
            better = better or "lower"
        elif not normalize and not invert and is_rate_unit(unit):
            better = better or "higher"
        bits = []
        if meta.get("rounds"):
            r = meta["rounds"]
            bits.append(f"median of {r} round{'s' if r != '1' else ''}")
        bits += [b for b in (meta.get("date"), meta.get("host")) if b]
        subtitle = " · ".join(bits) or None
    elif mixed and not normalize:
        print("chart.py: warning: rows have different units (" + ", ".join(sorted({u for u in row_units if u}))
              + "); consider --normalize COLUMN", file=sys.stderr)

    # Transformations.
    for s in series:
        s.values = [None if v is None else v * args.scale for v in s.values]
        if invert:
            s.values = [None if (v is None or v == 0) else invert / v for v in s.values]
    if normalize:
        base = next((s for s in series if s.key == normalize.lower() or s.name.lower() == normalize.lower()), None)
        if base is None:
            fail(f"--normalize: no series {normalize!r} (series: " + ", ".join(s.key for s in series) + ")")
        # Rows without a base value cannot be shown relative to it.
        keep = [i for i, b in enumerate(base.values) if b not in (None, 0)]
        if len(keep) < len(groups):
            print("chart.py: no " + base.name + " value, row left out: "
                  + ", ".join(g for i, g in enumerate(groups) if i not in keep), file=sys.stderr)
            if not keep:
                fail(f"--normalize {normalize}: the base series has no values")
            groups = [groups[i] for i in keep]
            row_units = [row_units[i] for i in keep]
            for s in series:
                s.values = [s.values[i] for i in keep]
                s.raw = [s.raw[i] for i in keep]
        bvals = list(base.values)
        # Rows where lower is better (time, memory) are inverted: base / value, so that above 1
        # always means better than the base.
        inv = [not invert and lower_is_better(u or unit) for u in row_units]
        for s in series:
            s.values = [None if (v is None or (iv and v == 0)) else (b / v if iv else v / b)
                        for v, b, iv in zip(s.values, bvals, inv)]
        ylabel = ylabel or f"relative to {base.name} (×)"
        if any(inv) or all(is_rate_unit(u or unit) for u in row_units):
            better = better or "higher"
        suffix, ref = "×", 1.0
        if mixed or any(row_units) or any(inv):
            notes = []
            for g, u, iv in zip(groups, row_units, inv):
                u = u or unit or ""
                if row_unit_from_label(g):  # the label names its unit already
                    u = ""
                how = ("as speed" if is_time_unit(u or unit) else "inverted") if iv else ""
                notes.append(", ".join(x for x in (u, how) if x))

    if not ylabel:
        ylabel = unit or "value"
        if args.invert:
            ylabel = f"{args.invert:g} / ({unit})" if unit else f"{args.invert:g} / value"
    if better:
        ylabel += f" ({better} is better)"
    if args.ylabel:
        ylabel = args.ylabel
    if not title:
        title = meta.get("title") or table.heading or os.path.splitext(os.path.basename(args.input))[0]
    if args.title:
        title = args.title
    if args.subtitle is not None:
        subtitle = args.subtitle
    if subtitle is None and meta.get("date"):
        subtitle = meta["date"]

    svg = render(groups, series, {
        "title": title, "subtitle": subtitle or "", "ylabel": ylabel, "log": args.log,
        "log_note": not args.ylabel, "orientation": args.orientation,
        "reference": ref, "suffix": suffix, "group_notes": notes, "raw_unit": raw_unit,
        "xlabel": args.xlabel if args.xlabel is not None else table.header[args.label_column],
    })

    out = args.output
    if not out:
        out = "-" if args.input == "-" else os.path.splitext(args.input)[0] + ".svg"
    if out == "-":
        sys.stdout.write(svg)
    else:
        with open(out, "w", encoding="utf-8") as f:
            f.write(svg)
        print(f"chart.py: wrote {out}", file=sys.stderr)
    if args.png or args.png_output:
        if out == "-":
            fail("--png needs an SVG file (-o PATH)")
        png = args.png_output or os.path.splitext(out)[0] + ".png"
        tool = shutil.which("rsvg-convert")
        if not tool:
            print("chart.py: rsvg-convert not found (apt-get install librsvg2-bin); no PNG written",
                  file=sys.stderr)
        else:
            r = subprocess.run([tool, "--zoom", "1.5", "--format", "png", "--output", png, out])
            if r.returncode != 0:
                print(f"chart.py: rsvg-convert failed ({r.returncode}); no PNG written", file=sys.stderr)
            else:
                print(f"chart.py: wrote {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
