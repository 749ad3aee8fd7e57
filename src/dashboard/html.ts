/**
 * The two HTML documents: the login form (what anyone without the admin key gets, with status 401: no data) and
 * the dashboard shell the bundled script fills in. No inline script or style, so the CSP can forbid both.
 */

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function loginPage(prefix: string, message: string | undefined): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tokmeter dashboard — sign in</title>
<link rel="stylesheet" href="${prefix}/assets/app.css">
</head>
<body class="login">
<main id="main">
<h1>tokmeter usage dashboard</h1>
<form method="post" action="${prefix}/login" class="login-form">
  <label for="admin-key">Admin key</label>
  <input id="admin-key" name="key" type="password" autocomplete="current-password" required autofocus>
  <button type="submit">Sign in</button>
  ${message ? `<p id="login-error" role="alert" class="error">${esc(message)}</p>` : ''}
</form>
</main>
</body>
</html>`;
}

export function dashboardPage(prefix: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tokmeter usage dashboard</title>
<link rel="stylesheet" href="${prefix}/assets/app.css">
<script src="${prefix}/assets/app.js" defer></script>
</head>
<body data-prefix="${esc(prefix)}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <h1>tokmeter usage</h1>
  <form method="post" action="${prefix}/logout"><button type="submit" id="logout">Sign out</button></form>
</header>
<main id="main" tabindex="-1">
  <form id="filters" class="filters" aria-label="Period and filters">
    <div class="field"><label for="f-period">Period</label>
      <select id="f-period" name="period">
        <option value="1h">Last hour</option>
        <option value="6h">Last 6 hours</option>
        <option value="24h" selected>Last 24 hours</option>
        <option value="7d">Last 7 days</option>
        <option value="30d">Last 30 days</option>
        <option value="custom">Custom…</option>
      </select></div>
    <div class="field"><label for="f-from">From (UTC)</label><input id="f-from" name="from" type="datetime-local" step="60"></div>
    <div class="field"><label for="f-to">To (UTC)</label><input id="f-to" name="to" type="datetime-local" step="60"></div>
    <div class="field"><label for="f-key">API key (tenant)</label><select id="f-key" name="key"><option value="">All keys</option></select></div>
    <div class="field"><label for="f-model">Model</label><select id="f-model" name="model"><option value="">All models</option></select></div>
    <div class="actions">
      <button type="submit" id="apply">Apply</button>
      <button type="button" id="export-csv">Export CSV</button>
    </div>
  </form>
  <p id="status" role="status" class="status">Loading…</p>

  <section aria-labelledby="h-totals"><h2 id="h-totals">Totals for the period</h2>
    <dl id="totals" class="cards"></dl></section>

  <section aria-labelledby="h-live"><h2 id="h-live">Live (this server)</h2>
    <dl id="live" class="cards"><div><dt>Status</dt><dd>waiting for the first reading</dd></div></dl></section>

  <section aria-labelledby="h-tokens" class="chart-section"><h2 id="h-tokens">Tokens over time</h2>
    <figure><div id="chart-tokens" class="chart" role="img" aria-label="Tokens over time"></div>
    <figcaption id="cap-tokens"></figcaption></figure>
    <details><summary>Tokens as a table</summary><div id="table-tokens" class="scroll"></div></details></section>

  <section aria-labelledby="h-cost" class="chart-section"><h2 id="h-cost">Cost over time</h2>
    <figure><div id="chart-cost" class="chart" role="img" aria-label="Cost over time"></div>
    <figcaption id="cap-cost"></figcaption></figure>
    <details><summary>Cost as a table</summary><div id="table-cost" class="scroll"></div></details></section>

  <section aria-labelledby="h-keys"><h2 id="h-keys">Keys: usage, budgets, rate limits</h2>
    <div id="keys" class="scroll"></div></section>

  <section aria-labelledby="h-models"><h2 id="h-models">Models</h2>
    <div id="models" class="scroll"></div></section>

  <section aria-labelledby="h-recent"><h2 id="h-recent">Latest usage records</h2>
    <div id="recent" class="scroll"></div></section>
  <p id="render-time" class="muted"></p>
</main>
</body>
</html>`;
}
