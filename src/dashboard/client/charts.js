// The two charts (uPlot, bundled). Each series differs by line pattern and point marker as well as by colour
// (Okabe–Ito palette), and the legend names the pattern, so the charts read without colour.
import uPlot from 'uplot';

export const TOKEN_SERIES = [
  { field: 'promptTokens', label: 'Prompt (solid line)', color: '#0072B2', dash: undefined, fill: true },
  { field: 'cachedTokens', label: 'Cached (dashed line)', color: '#D55E00', dash: [10, 6], fill: false },
  { field: 'completionTokens', label: 'Completion (dotted line)', color: '#009E73', dash: [2, 5], fill: true },
];

const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');

function size(el) {
  return { width: Math.max(320, el.clientWidth || 800), height: 260 };
}

const axisStyle = { stroke: '#222', grid: { stroke: '#ddd' }, ticks: { stroke: '#bbb' } };

export function tokensChart(el, summary) {
  const x = summary.series.t.map((t) => t / 1000);
  const data = [x, ...TOKEN_SERIES.map((s) => summary.series[s.field])];
  const opts = {
    ...size(el),
    tzDate: utc,
    cursor: { drag: { x: false, y: false } },
    scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.05] } },
    axes: [{ ...axisStyle }, { ...axisStyle, label: 'tokens', size: 70 }],
    series: [
      { label: 'Time (UTC)' },
      ...TOKEN_SERIES.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        dash: s.dash,
        // Markers: filled circles (prompt), hollow circles (cached), filled larger circles (completion).
        points: {
          show: true,
          size: s.field === 'completionTokens' ? 9 : 6,
          fill: s.fill ? s.color : '#fff',
          stroke: s.color,
        },
        value: (_u, v) => (v === null ? '—' : v.toLocaleString('en-US')),
      })),
    ],
  };
  return new uPlot(opts, data, el);
}

/** Axis ticks for small amounts: 0.0003 reads as 0.0003, not as 0. */
function costTick(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1
    ? v.toFixed(2)
    : v
        .toPrecision(2)
        .replace(/(\.\d*?)0+$/, '$1')
        .replace(/\.$/, '');
}

export function costChart(el, summary) {
  const x = summary.series.t.map((t) => t / 1000);
  const y = summary.series.costPico.map((c) => Number(BigInt(c)) / 1e12);
  const opts = {
    ...size(el),
    tzDate: utc,
    cursor: { drag: { x: false, y: false } },
    scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { ...axisStyle },
      { ...axisStyle, label: summary.currency, size: 80, values: (_u, ticks) => ticks.map(costTick) },
    ],
    series: [
      { label: 'Time (UTC)' },
      {
        label: `Cost (${summary.currency}, bars)`,
        stroke: '#444',
        fill: 'rgba(204,121,167,0.55)',
        width: 1,
        paths: uPlot.paths.bars({ size: [0.8, 60] }),
        points: { show: false },
        value: (_u, v) => (v === null ? '—' : v.toFixed(6)),
      },
    ],
  };
  return new uPlot(opts, [x, y], el);
}
