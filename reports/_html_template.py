"""The Jinja2 template and inline stylesheet of ``report.html`` (rendered with autoescape)."""

CSS = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg-alt: #f6f8fa;
        --accent: #0969da; --bad: #cf222e; --good: #1a7f37; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.45;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 64px; }
header { border-bottom: 1px solid var(--line); margin-bottom: 8px; padding-bottom: 12px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 8px; }
.meta { color: var(--muted); margin: 0; }
nav { position: sticky; top: 0; background: rgba(255,255,255,.95); padding: 8px 0;
      border-bottom: 1px solid var(--line); z-index: 1; }
nav a { color: var(--accent); text-decoration: none; margin-right: 18px; font-weight: 500; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 14px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.card b { display: block; font-size: 20px; }
.card span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; vertical-align: top; }
th { background: var(--bg-alt); text-align: left; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.baseline td { color: var(--muted); font-style: italic; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
.best { font-weight: 700; color: var(--good); }
.sub { display: block; color: var(--muted); font-size: 12px; }
.sub.best { color: var(--good); }
.failed { color: var(--bad); font-size: 12px; display: block; }
.delta { display: block; color: var(--muted); font-size: 11px; }
.reference { display: block; color: var(--accent); font-size: 11px; font-style: italic; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0 10px; }
figure.plot { margin: 10px 0 22px; }
figure.plot img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0 18px; }
.tile { margin: 0; width: 100px; text-align: center; }
.tile img { width: 96px; height: 96px; object-fit: contain; image-rendering: pixelated;
            border: 1px solid var(--line); background: var(--bg-alt); display: block; margin: 0 auto; }
.tile figcaption { margin: 2px 0 0; color: var(--fg); font-size: 12px; overflow-wrap: anywhere; }
.tile .score { display: block; color: var(--muted); font-variant-numeric: tabular-nums; }
.tile .score.best { color: var(--good); font-weight: 700; }
details { margin: 4px 0 8px; }
summary { cursor: pointer; color: var(--accent); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
            font-size: 12px; }
pre { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 4px; padding: 10px;
      overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.error { color: var(--bad); overflow-wrap: anywhere; }
.ok { color: var(--good); }
.columns { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
.columns > div > h3 { margin-top: 8px; }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Denoising benchmark — {{ run.name }}</title>
<style>{{ css | safe }}</style>
</head>
<body>
<main>
<header>
<h1>Denoising benchmark — {{ run.name }}</h1>
<p class="meta">Run created {{ manifest.get("created", "at an unknown time") }}
 · {{ results | length | count("cell") }} · {{ summary.method.nunique() | count("method") }}
 · {{ summary.noise.nunique() | count("noise") }} · {{ n_images | count("image") }} × {{ n_seeds | count("seed") }}
 · device {{ manifest.get("device", "cpu") }}</p>
</header>
<nav>
<a href="#summary">Summary</a><a href="#tables">Tables</a><a href="#plots">Plots</a>
<a href="#images">Images</a><a href="#failures">Failures ({{ failures | length }})</a>
<a href="#environment">Environment</a>
</nav>

<section id="summary">
<h2>Summary</h2>
<div class="cards">
{% if ranking | length %}<div class="card"><b>{{ ranking[0].method }}</b><span>best mean {{ primary | name }} rank</span></div>{% endif %}
<div class="card"><b>{{ ok_cells }} / {{ results | length }}</b><span>cells finished</span></div>
<div class="card"><b>{{ failures | length }}</b><span>cells failed or timed out</span></div>
</div>
<h3>Winners per noise and level</h3>
<p class="note">Best mean {{ metric_names }} over images and seeds. “Tied with it”: the methods
whose paired difference to the winner is not significant (Wilcoxon signed-rank test over images,
each image's seeds averaged first, Holm-corrected across the methods of the level, 5%); “–”:
every other method is significantly worse; “{{ too_few }}”: with so few images no difference
could be significant (the exact test's smallest p-value with n images is 2/2<sup>n</sup>, and
Holm multiplies it by the number of comparisons). {{ tie_note }} “Fastest near the
winner” is the method with the highest median throughput whose mean {{ primary | name }} is within
{{ margin }} of the best.{{ direction_note }}</p>
<table>
<thead><tr><th>noise</th>{% if several_modes %}<th>mode</th>{% endif %}<th class="num">level</th>
{% for m in metrics %}<th>best {{ m | name }}</th><th class="num">{{ m | unit_header }}</th><th>tied with it</th>{% endfor %}
<th>fastest near the winner</th><th class="num">{{ primary | unit_header }}</th><th class="num">MP/s</th></tr></thead>
<tbody>
{% for w in winners %}
<tr><td>{{ w.noise }}</td>{% if several_modes %}<td>{{ w.mode }}</td>{% endif %}<td class="num">{{ w.level | level }}</td>
{% for m in metrics %}<td>{{ w[m.name ~ "_winner"] | dash }}</td><td class="num">{{ w[m.name] | number(m.decimals) }}</td>
<td>{{ w[m.name ~ "_tied"] | ties(w[m.name ~ "_separation"]) }}</td>
{% endfor %}
<td>{{ w.fastest_near }}</td><td class="num">{{ w["fastest_" ~ primary.name] | number(primary.decimals) }}</td>
<td class="num">{{ w.fastest_mpix_per_s | rate }}</td></tr>
{% endfor %}
</tbody>
</table>
<h3>Overall ranking</h3>
<p class="note">Mean rank over the {{ n_conditions }} noise/level conditions (1 = best), wins by
mean {{ primary | name }}, the mean of the per-condition mean {{ primary | name }}s and the median throughput.</p>
<table>
<thead><tr><th class="num">#</th><th>method</th>{% for m in metrics %}<th class="num">{{ m | name }} rank</th>{% endfor %}
<th class="num">wins</th><th class="num">mean {{ primary.label }}</th><th class="num">MP/s</th></tr></thead>
<tbody>
{% for r in ranking %}
<tr><td class="num">{{ loop.index }}</td><td>{{ r.method }}</td>{% for m in metrics %}<td class="num">{{ r[m.name ~ "_rank"] | number(2) }}</td>
{% endfor %}<td class="num">{{ r[primary.name ~ "_wins"] }} / {{ r.conditions }}</td>
<td class="num">{{ r[primary.name] | number(primary.decimals) }}</td><td class="num">{{ r.mpix_per_s | rate }}</td></tr>
{% endfor %}
</tbody>
</table>
</section>

<section id="tables">
<h2>Quality by noise and level</h2>
<p class="note">Mean {{ metric_lines }} over images and seeds, ± the half-width of its
95% interval over images (each image's seeds averaged first; none with a single image). Under
each mean, Δ: the {{ difference_to }}, the mean over images of the per-image difference ± the
half-width of its 95% t-interval over images. The best method of each column is in
green.{{ direction_note }} MP/s is the median throughput (megapixels per second) on the
method's device. {{ timing_note }}</p>
<div class="columns">
{% for t in tables %}
<div>
<h3>{{ t.noise }} noise{% if several_modes %}, {{ t.mode }} mode{% endif %}</h3>
<table>
<thead><tr><th>method</th>{% for lv in t.levels %}<th class="num">level {{ lv | level }}</th>{% endfor %}<th class="num">MP/s</th></tr></thead>
<tbody>
{% for row in t.rows %}
<tr{% if row.baseline %} class="baseline"{% endif %}><td>{{ row.label }}</td>
{% for c in row.cells %}<td class="num">{% if c is none %}–{% elif c[primary.name] != c[primary.name] %}<span class="failed">{{ c.failed }} failed</span>{% else %}{% for m in metrics %}{% set classes = (["sub"] if not loop.first else []) + (["best"] if m.name in c.best else []) %}<span{% if classes %} class="{{ classes | join(" ") }}"{% endif %}>{{ c[m.name] | ci(c[m.name ~ "_ci"], m.decimals) }}</span>{% if c.reference %}{% if loop.first %}<span class="reference">reference</span>{% endif %}{% elif c[m.name ~ "_diff"] == c[m.name ~ "_diff"] %}<span class="delta">{{ c[m.name ~ "_diff"] | difference(c[m.name ~ "_diff_ci"], m.decimals) }}</span>{% endif %}{% endfor %}{% if c.failed %}<span class="failed">{{ c.failed }} failed</span>{% endif %}{% endif %}</td>
{% endfor %}<td class="num">{% if not row.baseline %}{{ row.mpix_per_s | rate }}{% endif %}</td></tr>
{% endfor %}
</tbody>
</table>
</div>
{% endfor %}
</div>
</section>

<section id="plots">
<h2>Plots</h2>
{% for title, uri in figures %}
<figure class="plot"><img src="{{ uri }}" alt="{{ title }}"><figcaption>{{ title }}.
{% if loop.index == 1 %}Error bars: 95% intervals over images; dotted grey: the noisy input.{% else %}Circles: CPU, triangles: GPU; ringed points joined by the line form the Pareto front (no other method is both faster and better).{% endif %}</figcaption></figure>
{% else %}
<p class="note">No cell finished, so there is nothing to plot.</p>
{% endfor %}
</section>

<section id="images">
<h2>Visual comparison</h2>
<p class="note">The central crop of each stored image (first seed), enlarged without smoothing; under
each crop, the {{ metric_names }} of the whole image. The best denoiser of each row by each metric is in green.</p>
{% for g in grids %}
<h3 id="{{ g.anchor }}">{{ g.title }}</h3>
<div class="grid">
{% for tile in g.tiles %}
<figure class="tile"><img src="{{ tile.uri }}" alt="{{ tile.label }}"><figcaption>{{ tile.label }}{% if tile.reference %}<span class="score">reference</span>{% else %}{% for m in metrics %}<span class="score{% if m.name in tile.best %} best{% endif %}">{{ tile.scores.get(m.name) | score(m) }}</span>{% endfor %}{% endif %}</figcaption></figure>
{% endfor %}
</div>
{% else %}
<p class="note">This run stored no crops.</p>
{% endfor %}
</section>

<section id="failures">
<h2>Failures</h2>
{% for group in failure_groups %}
<h3>{{ group.method }} — {{ group.total | count("cell") }}</h3>
<table>
<thead><tr><th>status</th><th>reason</th><th class="num">cells</th></tr></thead>
<tbody>
{% for reason in group.reasons %}
<tr><td>{{ reason.status }}</td><td><code class="error">{{ reason.error }}</code>
<details><summary>which cells</summary><ul>{% for cell in reason.cells %}<li>{{ cell }}</li>{% endfor %}</ul></details></td>
<td class="num">{{ reason.count }}</td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p class="ok">Every cell finished.</p>
{% endfor %}
</section>

<section id="environment">
<h2>Environment</h2>
<div class="columns">
<table>
<tbody>
<tr><th>git commit</th><td><code>{{ env.get("git_commit") or "unknown" }}</code></td></tr>
<tr><th>platform</th><td>{{ env.get("platform", "unknown") }}</td></tr>
<tr><th>CPU</th><td>{{ cpu.get("model", "unknown") }} ({{ cpu.get("cores", "?") }} logical cores, {{ cpu.get("machine", "") }})</td></tr>
<tr><th>GPU</th><td>{{ (env.get("gpus") or ["none"]) | join(", ") }}</td></tr>
<tr><th>device asked</th><td>{{ sweep.get("device", "") }} (resolved: {{ manifest.get("device", "") }})</td></tr>
{% for name, info in manifest.get("datasets", {}).items() %}
<tr><th>dataset {{ name }}</th><td>{{ info.get("images") }} images, sha256 <code>{{ (info.get("sha256") or "")[:16] }}…</code></td></tr>
{% endfor %}
</tbody>
</table>
<table>
<thead><tr><th>package</th><th>version</th></tr></thead>
<tbody>
{% for name, version in env.get("versions", {}).items() %}<tr><td>{{ name }}</td><td>{{ version }}</td></tr>
{% endfor %}
</tbody>
</table>
<table>
<thead><tr><th>denoiser</th><th>from</th><th>parameters</th></tr></thead>
<tbody>
{% for p in params.itertuples() %}<tr><td>{{ p.denoiser }}</td><td>{{ origins.get(p.denoiser, "") }}</td><td><code>{{ p.params }}</code></td></tr>
{% endfor %}
</tbody>
</table>
</div>
<h3>Sweep configuration</h3>
<table>
<tbody>
{% for key, value in sweep_items %}<tr><th>{{ key }}</th><td><code>{{ value }}</code></td></tr>
{% endfor %}
</tbody>
</table>
</section>
</main>
</body>
</html>
"""
