"""``report.html``: one self-contained page per run, built from the run's own files.

Loss curves (one chart per loss family), learning rate, images/s, the ``--eval-every`` curve
against the untouched input, the sample grids (a slider over at most :data:`MAX_GRIDS`, embedded
as small JPEGs, each linked to its full PNG), the best checkpoint and the config. No CDN, no
server and no external file: it opens from a phone's downloads as well as from the run folder.
Training rewrites it as it goes (the page then reloads itself every :data:`RELOAD_SECONDS`);
``cgan report RUN`` rebuilds it from the files alone.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from cyclegan_cli.atomic import atomic_write_text
from cyclegan_cli.rundir.charts import Series, line_chart
from cyclegan_cli.rundir.evallog import best_row, read_rows
from cyclegan_cli.rundir.layout import RunDir
from cyclegan_cli.rundir.losslog import complete_text

MAX_GRIDS = 12  # sample grids embedded (evenly spaced, the first and the latest included)
THUMB_WIDTH = 640  # pixels; the full-size PNG is a link away
RELOAD_SECONDS = 60  # how often an open page of a running run reloads itself
FIXED = ("step", "epoch", "lr", "images_per_s")  # losses.csv's columns before the losses
CAPTION_KEY = "Description"  # PNG text of a sample grid: its columns, left to right
STEP_KEY = "cyclegan-cli:step"  # PNG text of a sample grid: the training step it shows
COLUMN_SEPARATOR = " | "
FAMILIES = {"D": "discriminators", "G": "generators, adversarial", "cycle": "cycle consistency",
            "idt": "identity", "L1": "L1 to the target (pix2pix)", "NCE": "PatchNCE (CUT)"}

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:12px;color:#222}
h1{font-size:1.4em;margin:.2em 0;word-break:break-all}h2{font-size:1.15em;margin:1.2em 0 .4em}
.status{color:#555}.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,400px),1fr));
gap:8px}.chart{width:100%;height:auto;background:#fff}.chart text{font-size:15px;fill:#333}
.chart .t{font-size:17px;font-weight:600}.chart .frame{fill:none;stroke:#999}
.chart .grid{stroke:#e4e4e4}table{border-collapse:collapse;font-size:13px;width:100%}
td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top;
word-break:break-word}.grids img{width:100%;max-width:640px;height:auto;display:block;margin:6px 0;
image-rendering:auto}input[type=range]{width:100%}.muted{color:#777}
"""
SCRIPT = r"""
const figs=[...document.querySelectorAll('.grids figure')],s=document.getElementById('pick');
function show(i){figs.forEach((f,j)=>f.hidden=j!=i);}
const h=location.hash.match(/grid=(\d+)/);
if(s){if(h)s.value=h[1];s.oninput=()=>show(+s.value);show(+s.value);}
addEventListener('load',()=>{const ok=[...document.images].filter(i=>i.naturalWidth>0);
document.documentElement.dataset.imagesLoaded=ok.length;});
"""


@dataclass
class Thumbnails:
    """Embedded JPEGs of the sample grids, kept between refreshes (path → (mtime, data URI))."""

    cache: dict[Path, tuple[int, str, str]] = field(default_factory=dict)
    steps: dict[Path, tuple[int, float]] = field(default_factory=dict)

    def step(self, path: Path) -> float:
        """The training step a grid shows (from its PNG text; ``inf`` where it has none, as in
        runs from before it was written), read without decoding the pixels."""
        stamp = path.stat().st_mtime_ns
        hit = self.steps.get(path)
        if hit and hit[0] == stamp:
            return hit[1]
        with Image.open(path) as img:
            text = img.info.get(STEP_KEY)
        try:
            step = float(text) if text is not None else math.inf
        except ValueError:
            step = math.inf
        self.steps[path] = (stamp, step)
        return step

    def order(self, grids: list[Path]) -> list[Path]:
        """Grids in training order: by the step each shows where all say it, else by file
        time (older runs; a copy that kept the times), then name."""
        try:
            steps = {p: self.step(p) for p in grids}
            if all(math.isfinite(v) for v in steps.values()):
                return sorted(grids, key=lambda p: (steps[p], p.name))
            return sorted(grids, key=lambda p: (p.stat().st_mtime_ns, p.name))
        except OSError:  # a grid deleted meanwhile
            return sorted(grids, key=lambda p: p.name)

    def keep_only(self, paths: list[Path]) -> None:
        """Forget the thumbnails of grids no longer shown (the choice moves as a run grows)."""
        wanted = set(paths)
        self.cache = {p: v for p, v in self.cache.items() if p in wanted}

    def get(self, path: Path) -> tuple[str, str]:
        """(data URI, the grid's column caption or "")."""
        stamp = path.stat().st_mtime_ns
        hit = self.cache.get(path)
        if hit and hit[0] == stamp:
            return hit[1], hit[2]
        with Image.open(path) as img:
            caption = str(img.info.get(CAPTION_KEY, ""))
            img = img.convert("RGB")
            if img.width > THUMB_WIDTH:
                img = img.resize((THUMB_WIDTH, max(1, round(img.height * THUMB_WIDTH
                                                            / img.width))),
                                 Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=82, optimize=True)
        uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        self.cache[path] = (stamp, uri, caption)
        return uri, caption


def read_losses(path: Path) -> tuple[list[str], dict[str, list[float]]]:
    """(loss names, {column: values}) from ``losses.csv``; rows cut short are skipped."""
    if not path.exists():
        return [], {}
    reader = csv.DictReader(io.StringIO(complete_text(path), newline=""))
    columns = list(reader.fieldnames or [])
    data: dict[str, list[float]] = {c: [] for c in columns}
    for row in reader:
        try:
            values = {c: float(row[c]) for c in columns}
        except (TypeError, ValueError):
            continue
        for c, v in values.items():
            data[c].append(v)
    return [c for c in columns if c not in FIXED], data


def family(loss: str) -> str:
    """The loss family a column belongs to: the part of its name before the first ``_``."""
    return loss.split("_", 1)[0]


def pick_grids(grids: list[Path], limit: int = MAX_GRIDS) -> list[Path]:
    """At most ``limit`` grids, evenly spaced, the first and the latest always among them."""
    if len(grids) <= limit:
        return grids
    last = len(grids) - 1
    chosen = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [grids[i] for i in chosen]


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _loss_charts(names: list[str], data: dict[str, list[float]]) -> list[str]:
    steps = data.get("step", [])
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(family(name), []).append(name)
    charts = [line_chart([Series(n, steps, data[n]) for n in members],
                         f"{FAMILIES.get(fam, fam)} loss")
              for fam, members in groups.items()]
    for column, title in (("lr", "learning rate"), ("images_per_s", "speed, images/s")):
        if steps and column in data:
            charts.append(line_chart([Series(title.split(", ")[-1], steps, data[column])],
                                     title, log_y=False))
    return charts


def _eval_chart(rows: list[dict[str, str]]) -> str | None:
    if not rows:
        return None
    metric = rows[-1].get("metric", "")
    rows = [r for r in rows if r.get("metric") == metric]
    steps = [float(r["step"]) for r in rows]

    def column(name: str) -> list[float]:
        return [float(r.get(name) or "nan") for r in rows]

    medians = [float(r.get("median") or r["value"]) for r in rows]
    series = [Series(f"{metric} median", steps, medians), Series(f"{metric} mean", steps,
                                                                 column("value"))]
    if any(r.get("identity_median") for r in rows):
        series.append(Series("untouched input (median)", steps, column("identity_median"),
                             dashed=True))
    return line_chart(series, f"held-out {metric.replace('_', ' ')}, dB (higher is better)",
                      log_y=False)


def _best(run: RunDir, rows: list[dict[str, str]]) -> str:
    best = best_row(rows)
    if best is None:
        if rows:
            return ("<p>No evaluation has beaten the untouched input yet: no "
                    "<code>best.pt</code>.</p>")
        return ("<p class=muted>No held-out evaluation in this run (<code>--eval-every</code> "
                "with <code>--eval-a</code> keeps the best checkpoint).</p>")
    where = run.best.relative_to(run.path)
    there = "" if run.best.is_file() else " (the file is missing)"
    line = (f"<p><b>{_esc(where)}</b>{there}: step {_esc(best['step'])}, epoch "
            f"{_esc(best.get('epoch') or '?')}, {_esc(best.get('metric') or '')} median "
            f"{float(best.get('median') or best['value']):.2f} dB")
    if best.get("identity_median"):
        line += f" (untouched input {float(best['identity_median']):.2f} dB)"
    return line + "</p>"


def _grids(run: RunDir, thumbs: Thumbnails) -> str:
    grids = thumbs.order(list(run.samples.glob("*.png"))) if run.samples.is_dir() else []
    if not grids:
        return "<p class=muted>No sample grid yet.</p>"
    shown = pick_grids(grids)
    thumbs.keep_only(shown)
    figures, captions = [], []
    for i, path in enumerate(shown):
        rel = path.relative_to(run.path).as_posix()
        try:
            uri, caption = thumbs.get(path)
        except OSError:  # deleted or half-written meanwhile: the next refresh has it
            continue
        captions.append(caption)
        figures.append(f'<figure{"" if i == len(shown) - 1 else " hidden"}><figcaption>'
                       f'{_esc(path.stem)} — <a href="{_esc(rel)}">full size</a></figcaption>'
                       f'<img src="{uri}" alt="sample grid {_esc(path.stem)}"></figure>')
    note = (f" ({len(shown)} of {len(grids)} shown, evenly spaced)" if len(shown) < len(grids)
            else "")
    slider = (f'<input id="pick" type="range" min="0" max="{len(figures) - 1}" '
              f'value="{len(figures) - 1}" aria-label="sample grid">'
              if len(figures) > 1 else "")
    columns = (f"Each row, left to right: {captions[-1].replace(COLUMN_SEPARATOR, ', ')}"
               if captions and captions[-1] else "Sample grids")
    return (f"<p class=muted>{_esc(columns)}{note}.</p>"
            f'{slider}<div class="grids">{"".join(figures)}</div>')


def _config_table(run: RunDir) -> str:
    try:
        config = json.loads(run.config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "<p class=muted>config.json is missing or unreadable.</p>"
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(json.dumps(v))}</td></tr>"
                   for k, v in config.items())
    return f"<table>{rows}</table>"


def build_report(run: RunDir, *, status: str = "", live: bool = False,
                 thumbs: Thumbnails | None = None) -> str:
    """The page's HTML. ``status``: one line on where the run stands; ``live``: the page
    reloads itself (a run still training)."""
    thumbs = thumbs or Thumbnails()
    names, data = read_losses(run.losses)
    rows = read_rows(run.evals)
    steps = data.get("step", [])
    facts = []
    if steps:
        last = {c: values[-1] for c, values in data.items() if values}
        facts.append(", ".join(text for c, text in (
            ("step", f"step {last.get('step', 0):.0f}"),
            ("epoch", f"epoch {last.get('epoch', 0):.0f}"),
            ("images_per_s", f"{last.get('images_per_s', 0):.3g} images/s"),
            ("lr", f"lr {last.get('lr', 0):.3g}")) if c in last))
    facts.append("updated " + time.strftime("%Y-%m-%d %H:%M:%S"))
    charts = _loss_charts(names, data)
    eval_chart = _eval_chart(rows)
    refresh = f'<meta http-equiv="refresh" content="{RELOAD_SECONDS}">' if live else ""
    name = run.path.resolve().name or str(run.path.resolve())
    body = [f"<h1>{_esc(name)}</h1>",
            f'<p class="status">{_esc(status) + " — " if status else ""}{_esc("; ".join(facts))}'
            "</p>",
            "<h2>Losses, learning rate and speed</h2>",
            f'<div class="charts">{"".join(charts)}</div>' if charts else
            "<p class=muted>Nothing logged yet.</p>"]
    if eval_chart:
        body += ["<h2>Held-out evaluation</h2>", f'<div class="charts">{eval_chart}</div>']
    body += ["<h2>Best checkpoint</h2>", _best(run, rows),
             "<h2>Sample grids</h2>", _grids(run, thumbs),
             "<h2>Config</h2>", _config_table(run)]
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"{refresh}<title>{_esc(name)} — cyclegan-cli run report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}"
            f"<script>{SCRIPT}</script></body></html>")


def write_report(run: RunDir, *, status: str = "", live: bool = False,
                 thumbs: Thumbnails | None = None) -> Path:
    """Write ``report.html`` atomically; returns its path."""
    atomic_write_text(run.report, build_report(run, status=status, live=live, thumbs=thumbs))
    return run.report
