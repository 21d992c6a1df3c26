// Scripted "browser" for lightfi-token's end-to-end tests, used as $BROWSER:
//
//   node tests/idp/browser.js <authorize-url>
//
// Follows the authorize URL (cookie jar, manual redirects), fills in the
// login form of tests/idp/server.js, follows redirects until one leaves the
// IdP (the app's loopback callback), then GETs that callback URL.
//
// Env: IDP_USER (default alice), IDP_PASSWORD (default pw), IDP_DENY=1 to
// press "Cancel" instead of signing in.
// Exit 0 on success; on failure prints the reason to stderr and exits 1.
// Never prints the authorization code or any token to stdout.

const USER = process.env.IDP_USER || 'alice';
const PASSWORD = process.env.IDP_PASSWORD || 'pw';
const DENY = process.env.IDP_DENY === '1';
const MAX_STEPS = 20;
const CALLBACK_DEADLINE_MS = 5000;

function fail(msg) {
  process.stderr.write(`browser.js: ${msg}\n`);
  process.exit(1);
}

// Redact query values (code, state, tokens) in anything we log.
function redact(u) {
  try {
    const url = new URL(u);
    const parts = [...url.searchParams].map(([k, v]) => (
      ['error', 'error_description', 'iss'].includes(k) ? `${k}=${encodeURIComponent(v)}` : `${k}=<redacted>`));
    return `${url.origin}${url.pathname}${parts.length ? `?${parts.join('&')}` : ''}`;
  } catch {
    return '<unparseable url>';
  }
}

function log(msg) {
  if (process.env.BROWSER_DEBUG === '1') process.stderr.write(`browser.js: ${msg}\n`);
}

// --- minimal cookie jar (host + path matching; expiry via Max-Age/Expires) ---
const jar = new Map(); // key `${host}|${path}|${name}` -> {host, path, name, value}

function storeCookies(res, url) {
  const headers = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
  for (const line of headers) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq < 1) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = null;
    let expired = false;
    for (const a of attrs) {
      const i = a.indexOf('=');
      const k = (i === -1 ? a : a.slice(0, i)).trim().toLowerCase();
      const v = i === -1 ? '' : a.slice(i + 1).trim();
      if (k === 'path' && v.startsWith('/')) path = v;
      if (k === 'max-age' && Number(v) <= 0) expired = true;
      if (k === 'expires' && Date.parse(v) <= Date.now()) expired = true;
    }
    if (path === null) {
      const p = url.pathname;
      path = p.lastIndexOf('/') > 0 ? p.slice(0, p.lastIndexOf('/')) : '/';
    }
    const key = `${url.host}|${path}|${name}`;
    if (expired) jar.delete(key);
    else jar.set(key, { host: url.host, path, name, value });
  }
}

function pathMatches(reqPath, cookiePath) {
  if (reqPath === cookiePath) return true;
  if (!reqPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || reqPath.charAt(cookiePath.length) === '/';
}

function cookieHeader(url) {
  const list = [...jar.values()]
    .filter((c) => c.host === url.host && pathMatches(url.pathname, c.path))
    .sort((a, b) => b.path.length - a.path.length);
  return list.map((c) => `${c.name}=${c.value}`).join('; ');
}

async function request(url, init = {}) {
  const u = new URL(url);
  const headers = { ...(init.headers || {}) };
  const cookie = cookieHeader(u);
  if (cookie) headers.cookie = cookie;
  log(`${init.method || 'GET'} ${redact(u.href)}`);
  const res = await fetch(u, { ...init, headers, redirect: 'manual' });
  storeCookies(res, u);
  return res;
}

// --- form parsing ---------------------------------------------------------
function attr(tag, name) {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
  if (!m) return undefined;
  return (m[1] ?? m[2] ?? m[3]).replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

function parseForm(html) {
  const fm = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!fm) return null;
  const formTag = /<form\b[^>]*>/i.exec(fm[0])[0];
  const hidden = [];
  for (const m of fm[1].matchAll(/<input\b[^>]*>/gi)) {
    const tag = m[0];
    if ((attr(tag, 'type') || '').toLowerCase() === 'hidden' && attr(tag, 'name')) {
      hidden.push([attr(tag, 'name'), attr(tag, 'value') ?? '']);
    }
  }
  return {
    method: (attr(formTag, 'method') || 'get').toUpperCase(),
    action: attr(formTag, 'action'),
    hidden,
  };
}

// --- callback -------------------------------------------------------------
async function hitCallback(url) {
  const deadline = Date.now() + CALLBACK_DEADLINE_MS;
  let lastErr;
  for (;;) {
    try {
      const res = await fetch(url, { redirect: 'manual' });
      await res.arrayBuffer().catch(() => {});
      log(`callback answered HTTP ${res.status}`);
      return;
    } catch (err) {
      lastErr = err;
      if (Date.now() >= deadline) break;
      await new Promise((r) => { setTimeout(r, 200); });
    }
  }
  fail(`could not reach callback ${redact(url)}: ${lastErr?.cause?.code || lastErr?.message || lastErr}`);
}

// --- main -----------------------------------------------------------------
async function main() {
  const start = process.argv[2];
  if (!start) fail('usage: node browser.js <authorize-url>');
  let url;
  try {
    url = new URL(start);
  } catch {
    fail('argument is not a URL');
  }
  const idpOrigin = url.origin;
  let submitted = false;
  let init = {};

  for (let step = 0; step < MAX_STEPS; step += 1) {
    let res;
    try {
      res = await request(url.href, init);
    } catch (err) {
      fail(`request to ${redact(url.href)} failed: ${err?.cause?.code || err.message}`);
    }
    init = {};

    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer().catch(() => {});
      const loc = res.headers.get('location');
      if (!loc) fail(`HTTP ${res.status} without Location from ${redact(url.href)}`);
      const next = new URL(loc, url);
      if (next.origin !== idpOrigin) {
        if (next.searchParams.has('error')) {
          process.stderr.write(`browser.js: IdP redirected back with error=${next.searchParams.get('error')}\n`);
        }
        await hitCallback(next.href);
        return;
      }
      url = next;
      continue;
    }

    const body = await res.text();
    if (res.status !== 200) {
      fail(`HTTP ${res.status} from ${redact(url.href)}: ${body.slice(0, 500)}`);
    }
    if (submitted) {
      fail(`login form was not accepted (HTTP ${res.status} from ${redact(url.href)}): ${body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
    }
    const form = parseForm(body);
    if (!form) fail(`no <form> on page ${redact(url.href)}: ${body.slice(0, 300)}`);
    const fields = new URLSearchParams(form.hidden);
    if (DENY) {
      fields.set('deny', '1');
    } else {
      fields.set('username', USER);
      fields.set('password', PASSWORD);
    }
    const action = new URL(form.action || url.href, url);
    if (form.method !== 'POST') fail(`unexpected form method ${form.method}`);
    url = action;
    init = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: fields.toString(),
    };
    submitted = true;
  }
  fail(`too many steps (> ${MAX_STEPS})`);
}

main().catch((err) => fail(err?.stack || String(err)));
