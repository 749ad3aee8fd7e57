/* global document, window, location, history, URLSearchParams, Blob */
// The dashboard page: reads the period and filters from the URL, asks /dashboard/api/summary for the aggregates
// (computed by the ledger, never here), draws them, polls /dashboard/api/live, and exports what is shown as CSV.
// `window.__dashboard` exposes the last summary and the charts' data for tests.
import { costChart, tokensChart, TOKEN_SERIES } from './charts.js';
import {
  csvLine,
  fmtInt,
  fmtRate,
  fmtTime,
  formatMoney,
  formatPico,
  fromLocalInput,
  sumNum,
  sumPico,
  toLocalInput,
} from './format.js';
import { RECORD_CSV_HEADER, REPORT_COLUMNS, recordCells, reportCells } from '../../usage/report.js';

const prefix = document.body.dataset.prefix || '/dashboard';
const $ = (id) => document.getElementById(id);
const PERIODS = { '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };
const state = { summary: null, models: null, charts: [], live: null, firstRenderMs: null, liveTimer: null };
window.__dashboard = state;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'scope' || k === 'title' || k === 'role')
      e.setAttribute(k, String(v));
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function setStatus(text, error = false) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', error);
  s.setAttribute('role', error ? 'alert' : 'status');
}

// ---- period and filters (kept in the URL so a view can be bookmarked and reloaded) ----

function readParams() {
  const p = new URLSearchParams(location.search);
  const period = p.get('period') || '24h';
  let from;
  let to;
  if (period === 'custom') {
    to = Number(p.get('to')) || Date.now();
    from = Number(p.get('from')) || to - PERIODS['24h'];
  } else {
    to = Date.now();
    from = to - (PERIODS[period] ?? PERIODS['24h']);
  }
  return {
    period: PERIODS[period] || period === 'custom' ? period : '24h',
    from,
    to,
    key: p.get('key') || '',
    model: p.get('model') || '',
  };
}

function fillForm(v) {
  $('f-period').value = v.period;
  $('f-from').value = toLocalInput(v.from);
  $('f-to').value = toLocalInput(v.to);
  const custom = v.period === 'custom';
  $('f-from').disabled = !custom;
  $('f-to').disabled = !custom;
}

function formParams() {
  const period = $('f-period').value;
  const p = new URLSearchParams({ period });
  if (period === 'custom') {
    const from = fromLocalInput($('f-from').value);
    const to = fromLocalInput($('f-to').value);
    if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) {
      setStatus('Choose a "From" time before the "To" time (both in UTC).', true);
      $('f-from').focus();
      return null;
    }
    p.set('from', String(from));
    p.set('to', String(to));
  }
  if ($('f-key').value) p.set('key', $('f-key').value);
  if ($('f-model').value) p.set('model', $('f-model').value);
  return p;
}

function setOptions(select, names, selected, allLabel) {
  select.replaceChildren(el('option', { value: '', text: allLabel }));
  for (const n of names) select.append(el('option', { value: n, text: n, selected: n === selected }));
  select.value = selected;
}

// ---- data ----

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
  if (res.status === 401) {
    location.reload(); // the session ended: the server answers with the sign-in form
    throw new Error('signed out');
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error?.message || `HTTP ${res.status}`);
  return body;
}

async function load() {
  const v = readParams();
  fillForm(v);
  setStatus('Loading…');
  const q = new URLSearchParams({ from: String(v.from), to: String(v.to), limit: '50' });
  if (v.key) q.set('key', v.key);
  if (v.model) q.set('model', v.model);
  let s;
  try {
    s = await getJson(`${prefix}/api/summary?${q}`);
  } catch (err) {
    setStatus(`Could not load usage: ${err.message}`, true);
    return;
  }
  state.summary = s;
  state.models = null;
  render(s);
  if (state.firstRenderMs === null) {
    state.firstRenderMs = Math.round(performance.now());
    document.body.dataset.firstRenderMs = String(state.firstRenderMs);
    $('render-time').textContent =
      `First render ${state.firstRenderMs} ms after navigation (ledger queries ${s.queryMs} ms).`;
  }
  document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  // Usage by model (the model list and table) is a second pass over the period: it comes after the first render.
  q.delete('limit');
  q.delete('model');
  try {
    state.models = await getJson(`${prefix}/api/models?${q}`);
  } catch (err) {
    $('models').replaceChildren(el('p', { className: 'error', text: `Could not load models: ${err.message}` }));
    return;
  }
  if (state.summary !== s) return; // a newer view replaced this one
  renderModels(s, state.models);
  document.body.dataset.modelsRendered = document.body.dataset.rendered;
}

// ---- rendering ----

function money(pico, currency) {
  const m = formatMoney(BigInt(pico));
  return el('span', { title: `${m.exact} ${currency}`, 'data-exact': m.exact, text: `${m.text} ${currency}` });
}

function render(s) {
  setOptions($('f-key'), s.options.keys, s.filters.key ?? '', 'All keys');
  setOptions($('f-model'), s.filters.model ? [s.filters.model] : [], s.filters.model ?? '', 'All models');
  const filt = [
    s.filters.key ? `key ${s.filters.key}` : 'all keys',
    s.filters.model ? `model ${s.filters.model}` : 'all models',
  ];
  setStatus(`Showing ${fmtTime(s.from)} – ${fmtTime(s.to)} UTC, ${filt.join(', ')}.`);
  renderTotals(s);
  renderCharts(s);
  renderKeys(s);
  $('models').replaceChildren(el('p', { text: 'Loading models…' }));
  renderRecent(s);
}

function renderTotals(s) {
  const t = s.totals;
  const card = (label, field, value, shown) =>
    el('div', {}, el('dt', { text: label }), el('dd', { 'data-field': field, 'data-value': String(value) }, shown));
  $('totals').replaceChildren(
    card('Requests', 'requests', t.requests, fmtInt(t.requests)),
    card('Prompt tokens', 'promptTokens', t.promptTokens, fmtInt(t.promptTokens)),
    card('Cached tokens', 'cachedTokens', t.cachedTokens, fmtInt(t.cachedTokens)),
    card('Completion tokens', 'completionTokens', t.completionTokens, fmtInt(t.completionTokens)),
    card('Total tokens', 'totalTokens', t.totalTokens, fmtInt(t.totalTokens)),
    card('Cost', 'costPico', t.costPico, money(t.costPico, s.currency)),
  );
}

function table(caption, head, rows, id) {
  return el(
    'table',
    { id },
    el('caption', { text: caption }),
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...rows),
  );
}

const num = (n, field) => el('td', { className: 'num', 'data-field': field, 'data-value': String(n), text: fmtInt(n) });

function renderCharts(s) {
  for (const c of state.charts) c.destroy();
  state.charts = [];
  const tokEl = $('chart-tokens');
  const costEl = $('chart-cost');
  tokEl.replaceChildren();
  costEl.replaceChildren();
  const tok = tokensChart(tokEl, s);
  const cost = costChart(costEl, s);
  state.charts = [tok, cost];
  // Captions sum what the charts were given (their own data arrays), so a test can hold them against the API.
  const sums = Object.fromEntries(TOKEN_SERIES.map((x, i) => [x.field, sumNum(tok.data[i + 1])]));
  const n = s.series.t.length;
  const cap = $('cap-tokens');
  cap.replaceChildren(
    `Sum of the ${n} plotted buckets of ${s.bucket.label}: prompt `,
    el('strong', { 'data-field': 'promptTokens', 'data-value': sums.promptTokens, text: fmtInt(sums.promptTokens) }),
    ', cached ',
    el('strong', { 'data-field': 'cachedTokens', 'data-value': sums.cachedTokens, text: fmtInt(sums.cachedTokens) }),
    ', completion ',
    el('strong', {
      'data-field': 'completionTokens',
      'data-value': sums.completionTokens,
      text: fmtInt(sums.completionTokens),
    }),
    ' tokens.',
  );
  tokEl.setAttribute(
    'aria-label',
    `Line chart of tokens per ${s.bucket.label}: prompt ${sums.promptTokens}, cached ${sums.cachedTokens}, completion ${sums.completionTokens} in total. The table below has every value.`,
  );
  const costSum = sumPico(s.series.costPico);
  $('cap-cost').replaceChildren(
    `Sum of the ${n} plotted buckets: `,
    el('strong', { 'data-field': 'costPico', 'data-value': costSum.toString() }, money(costSum.toString(), s.currency)),
    '.',
  );
  costEl.setAttribute(
    'aria-label',
    `Bar chart of cost per ${s.bucket.label}: ${formatPico(costSum)} ${s.currency} in total.`,
  );

  const when = (t) => el('th', { scope: 'row', text: fmtTime(t) });
  $('table-tokens').replaceChildren(
    table(
      'Tokens per bucket (UTC start)',
      ['Bucket start', 'Requests', 'Prompt', 'Cached', 'Completion'],
      s.series.t.map((t, i) =>
        el(
          'tr',
          {},
          when(t),
          num(s.series.requests[i], 'requests'),
          num(s.series.promptTokens[i], 'promptTokens'),
          num(s.series.cachedTokens[i], 'cachedTokens'),
          num(s.series.completionTokens[i], 'completionTokens'),
        ),
      ),
    ),
  );
  $('table-cost').replaceChildren(
    table(
      `Cost per bucket (${s.currency})`,
      ['Bucket start', 'Cost'],
      s.series.t.map((t, i) =>
        el('tr', {}, when(t), el('td', { className: 'num' }, money(s.series.costPico[i], s.currency))),
      ),
    ),
  );
}

function budgetCell(k, currency) {
  if (k.budgets.length === 0) return el('td', { text: 'no budget' });
  return el(
    'td',
    {},
    ...k.budgets.map((b) => {
      const over = b.percent >= 100 ? ' — exceeded' : b.percent >= 80 ? ' — over 80 %' : '';
      const pct = b.percent > 0 && b.percent < 0.1 ? '< 0.1' : b.percent.toFixed(1);
      const spent = formatMoney(BigInt(b.spentPico)).text;
      const label = `${b.period}: ${spent} of ${formatMoney(BigInt(b.limitPico)).text} ${currency} (${pct} %)${over}`;
      return el(
        'div',
        { className: `budget${over ? ' warn' : ''}`, 'data-period': b.period },
        el('meter', {
          min: 0,
          max: 100,
          low: 80,
          high: 99,
          optimum: 0,
          value: Math.min(100, b.percent),
          'aria-label': label,
        }),
        el('span', { text: `${over ? '⚠ ' : ''}${label}` }),
      );
    }),
  );
}

function headroomCell(limit, used, headroom, unit) {
  if (limit === null) return el('td', { text: 'no limit' });
  if (used === null) return el('td', { text: `limit ${fmtInt(limit)}/min; usage not exposed` });
  return el('td', { 'data-value': String(headroom), text: `${fmtInt(headroom)} of ${fmtInt(limit)} ${unit}/min left` });
}

function renderKeys(s) {
  const rows = s.keys.map((k) =>
    el(
      'tr',
      { 'data-key': k.key },
      el('th', { scope: 'row', text: k.key }),
      num(k.usage.requests, 'requests'),
      num(k.usage.promptTokens, 'promptTokens'),
      num(k.usage.cachedTokens, 'cachedTokens'),
      num(k.usage.completionTokens, 'completionTokens'),
      num(k.usage.totalTokens, 'totalTokens'),
      el(
        'td',
        { className: 'num', 'data-field': 'costPico', 'data-value': k.usage.costPico },
        money(k.usage.costPico, s.currency),
      ),
      budgetCell(k, s.currency),
      headroomCell(k.rateLimit.tokensPerMinute, k.rateLimit.tokensInWindow, k.rateLimit.tokensHeadroom, 'tokens'),
      headroomCell(
        k.rateLimit.requestsPerMinute,
        k.rateLimit.requestsInWindow,
        k.rateLimit.requestsHeadroom,
        'requests',
      ),
    ),
  );
  $('keys').replaceChildren(
    rows.length
      ? table(
          'Usage in the period; budgets for the current UTC hour/day/month; rate-limit headroom now',
          [
            'Key (tenant)',
            'Requests',
            'Prompt',
            'Cached',
            'Completion',
            'Total',
            'Cost',
            'Budget',
            'Tokens/min',
            'Requests/min',
          ],
          rows,
          'keys-table',
        )
      : el('p', { text: 'No keys with usage in this period.' }),
  );
}

function renderModels(s, byModel) {
  const names = new Set(byModel.models.map((x) => x.group));
  if (s.filters.model) names.add(s.filters.model);
  setOptions($('f-model'), [...names].sort(), s.filters.model ?? '', 'All models');
  const shown = s.filters.model ? byModel.models.filter((x) => x.group === s.filters.model) : byModel.models;
  const rows = shown.map((m) =>
    el(
      'tr',
      { 'data-model': m.group },
      el('th', { scope: 'row', text: m.group }),
      num(m.requests, 'requests'),
      num(m.promptTokens, 'promptTokens'),
      num(m.cachedTokens, 'cachedTokens'),
      num(m.completionTokens, 'completionTokens'),
      el('td', { className: 'num', 'data-field': 'costPico', 'data-value': m.costPico }, money(m.costPico, s.currency)),
    ),
  );
  $('models').replaceChildren(
    rows.length
      ? table('Usage by model', ['Model', 'Requests', 'Prompt', 'Cached', 'Completion', 'Cost'], rows, 'models-table')
      : el('p', { text: 'No usage in this period.' }),
  );
}

function renderRecent(s) {
  if (s.recent === null) {
    $('recent').replaceChildren(el('p', { text: 'This ledger does not list records (see the server log).' }));
    return;
  }
  const rows = s.recent.map((r) =>
    el(
      'tr',
      { 'data-id': r.id },
      el('td', { text: fmtTime(r.timestamp) }),
      el('td', { text: r.key }),
      el('td', { text: r.model }),
      num(r.promptTokens, 'promptTokens'),
      num(r.cachedTokens, 'cachedTokens'),
      num(r.completionTokens, 'completionTokens'),
      el('td', { className: 'num' }, money(r.cost, r.currency)),
      el('td', { text: r.finishReason }),
      el('td', { className: 'num', text: `${fmtInt(r.latencyMs)} ms` }),
      el('td', { text: r.cacheHit ? 'yes' : 'no' }),
      el('td', { className: 'mono', title: r.id, text: r.id.slice(0, 12) }),
    ),
  );
  $('recent').replaceChildren(
    rows.length
      ? table(
          `Latest ${rows.length} records, newest first (times in UTC)`,
          [
            'Time',
            'Key',
            'Model',
            'Prompt',
            'Cached',
            'Completion',
            'Cost',
            'Finish',
            'Latency',
            'Cache hit',
            'Record id',
          ],
          rows,
          'recent-table',
        )
      : el('p', { text: 'No records in this period.' }),
  );
}

// ---- live figures ----

function renderLive(body) {
  const dl = $('live');
  if (!body.live) {
    dl.replaceChildren(
      el('div', {}, el('dt', { text: 'Live figures' }), el('dd', { text: 'not available on this server' })),
    );
    return;
  }
  const l = body.live;
  const item = (label, field, value) =>
    el('div', {}, el('dt', { text: label }), el('dd', { 'data-field': field, text: value }));
  const ttft = l.ttftMs;
  const ms = (v) => (v === null ? '—' : `${v} ms`);
  dl.replaceChildren(
    item('Requests in flight', 'inFlight', fmtInt(l.inFlight)),
    item('Queue depth', 'queueDepth', fmtInt(l.queueDepth)),
    item(`Tokens/s (last ${l.windowSeconds} s)`, 'tokensPerSecond', fmtRate(l.tokensPerSecond)),
    item('Completion tokens/s', 'completionTokensPerSecond', fmtRate(l.completionTokensPerSecond)),
    item(
      `Time to first token (${ttft.count} req.)`,
      'ttft',
      ttft.count ? `p50 ${ms(ttft.p50)} · p95 ${ms(ttft.p95)} · mean ${ms(ttft.mean)}` : 'no requests in the window',
    ),
    item(
      'Ledger',
      'ledger',
      body.ledger.connected
        ? `${fmtInt(body.ledger.pending)} records pending`
        : `not connected${body.ledger.lastError ? `: ${body.ledger.lastError}` : ''}`,
    ),
  );
}

async function pollLive() {
  clearTimeout(state.liveTimer);
  if (!document.hidden) {
    try {
      const body = await getJson(`${prefix}/api/live`);
      state.live = body;
      renderLive(body);
    } catch (err) {
      $('live').replaceChildren(
        el('div', {}, el('dt', { text: 'Live figures' }), el('dd', { text: `unavailable: ${err.message}` })),
      );
    }
  }
  state.liveTimer = setTimeout(pollLive, 2000);
}

// ---- CSV export: exactly the data on screen ----

export function summaryToCsv(s, models) {
  const out = [];
  out.push(csvLine(['tokmeter usage export']));
  out.push(csvLine(['from_utc', new Date(s.from).toISOString(), 'to_utc', new Date(s.to).toISOString()]));
  out.push(csvLine(['key', s.filters.key ?? 'all', 'model', s.filters.model ?? 'all', 'currency', s.currency]));
  // The usage columns of the server's report CSV (src/usage/report.ts), without its group and currency.
  const usageFields = REPORT_COLUMNS.filter((c) => c.field !== 'group' && c.field !== 'currency');
  const usageHead = usageFields.map((c) => c.csv);
  const usage = (r) =>
    reportCells(
      r,
      usageFields.map((c) => c.field),
    );
  out.push('', csvLine(['section', ...usageHead]), csvLine(['totals', ...usage(s.totals)]));
  out.push(
    '',
    csvLine([
      'bucket_start_utc',
      'requests',
      'prompt_tokens',
      'cached_tokens',
      'completion_tokens',
      'cost_pico',
      'cost',
    ]),
  );
  s.series.t.forEach((t, i) =>
    out.push(
      csvLine([
        new Date(t).toISOString(),
        s.series.requests[i],
        s.series.promptTokens[i],
        s.series.cachedTokens[i],
        s.series.completionTokens[i],
        s.series.costPico[i],
        formatPico(BigInt(s.series.costPico[i])),
      ]),
    ),
  );
  out.push('', csvLine(['key', ...usageHead, 'budgets', 'tokens_per_minute_headroom', 'requests_per_minute_headroom']));
  for (const k of s.keys) {
    const b = k.budgets.map((x) => `${x.period}: ${x.spent}/${x.limit}`).join('; ');
    out.push(
      csvLine([k.key, ...usage(k.usage), b, k.rateLimit.tokensHeadroom ?? '', k.rateLimit.requestsHeadroom ?? '']),
    );
  }
  out.push('', csvLine(['model', ...usageHead]));
  const shownModels = models ? models.models.filter((m) => !s.filters.model || m.group === s.filters.model) : [];
  for (const m of shownModels) out.push(csvLine([m.group, ...usage(m)]));
  if (s.recent) {
    // Every column of a usage record, as src/usage/report.ts writes records.
    out.push('', csvLine(RECORD_CSV_HEADER));
    for (const r of s.recent) out.push(csvLine(recordCells(r)));
  }
  return out.join('\r\n') + '\r\n';
}

function exportCsv() {
  const s = state.summary;
  if (!s) return;
  const blob = new Blob([summaryToCsv(s, state.models)], { type: 'text/csv;charset=utf-8' });
  const a = el('a', {
    href: URL.createObjectURL(blob),
    download: `tokmeter-usage-${new Date(s.from).toISOString().slice(0, 16)}-${new Date(s.to).toISOString().slice(0, 16)}.csv`,
  });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// ---- wiring ----

function init() {
  $('f-period').addEventListener('change', () => {
    const custom = $('f-period').value === 'custom';
    $('f-from').disabled = !custom;
    $('f-to').disabled = !custom;
  });
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = formParams();
    if (!p) return;
    history.pushState(null, '', `${location.pathname}?${p}`);
    void load();
  });
  $('export-csv').addEventListener('click', exportCsv);
  window.addEventListener('popstate', () => void load());
  let resize;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = setTimeout(() => {
      for (const c of state.charts) c.setSize({ width: Math.max(320, c.root.parentElement.clientWidth), height: 260 });
    }, 150);
  });
  document.addEventListener('visibilitychange', () => void pollLive());
  void load();
  void pollLive();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
