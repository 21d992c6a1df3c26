// A $BROWSER for tests/browser_login.rs: logs in through the test IdP's
// pages in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), as a person would, and reports what the last page showed.
//
//   node tests/tools/chromium-login.mjs OUT_DIR AUTHORIZE_URL
//
// Fills the login form (IDP_USER, default alice; IDP_PASSWORD, default pw),
// submits it, submits a consent form if one is shown, and follows the
// redirects to the app's loopback callback. Then writes, in OUT_DIR:
//   result.json  {url, status, title, text, html_contains}: the callback's
//                address without its query values, its HTTP status, its
//                title and visible text, and which query parameters of the
//                callback (code, state) appear in its HTML
//   page.html    the callback page's HTML
// or, on failure, error.txt with the reason. Query values (the code, the
// state) are never written anywhere. Chromium runs with a fresh profile in
// OUT_DIR, and a proxy that does not exist for every address but loopback,
// so nothing leaves the machine.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [outDir, authorizeUrl] = process.argv.slice(2);
const USER = process.env.IDP_USER || 'alice';
const PASSWORD = process.env.IDP_PASSWORD || 'pw';
const STEP_TIMEOUT_MS = 30_000;

// Query values (code, state, …) replaced, in addresses and in messages.
function redact(text) {
  return String(text).replace(/([?&][^=&#\s"']+=)[^&#\s"']*/g, '$1<redacted>');
}

function write(name, data) {
  const tmp = path.join(outDir, `.${name}.tmp`);
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, path.join(outDir, name));
}

async function login(page) {
  const redirect = new URL(new URL(authorizeUrl).searchParams.get('redirect_uri'));
  const idpOrigin = new URL(authorizeUrl).origin;
  const atCallback = (u) => u.origin === redirect.origin && u.pathname === redirect.pathname;

  let status = null;
  page.on('response', (response) => {
    const request = response.request();
    if (request.isNavigationRequest() && request.frame() === page.mainFrame() && atCallback(new URL(response.url()))) {
      status = response.status();
    }
  });

  await page.goto(authorizeUrl);
  for (let step = 0; ; step += 1) {
    await page.waitForLoadState('load');
    const here = new URL(page.url());
    if (atCallback(here)) break;
    if (step >= 5) throw new Error(`still not at the callback after ${step} forms: ${redact(here.href)}`);
    if (here.origin !== idpOrigin) throw new Error(`left the IdP for ${redact(here.href)}`);

    const password = page.locator('input[type=password]');
    let submit;
    if (await password.count() > 0) {
      await page.locator('input[name=username]').fill(USER);
      await password.fill(PASSWORD);
      submit = page.locator('form button[type=submit]:not([name=deny])').first();
    } else if (await page.locator('form').count() > 0) {
      // A consent form: accept.
      submit = page.locator('form [type=submit]:not([name=deny])').first();
    } else {
      const text = (await page.locator('body').innerText()).slice(0, 300);
      throw new Error(`no form on ${redact(here.href)}: ${text}`);
    }
    await submit.click();
    // Either the browser moves on, or the IdP shows the form again with an error.
    await Promise.race([
      page.waitForURL((u) => u.href !== here.href, { timeout: STEP_TIMEOUT_MS }),
      page.locator('.error').waitFor({ timeout: STEP_TIMEOUT_MS }).then(async () => {
        throw new Error(`the IdP refused the login: ${await page.locator('.error').innerText()}`);
      }),
    ]);
  }

  const callback = new URL(page.url());
  const html = await page.content();
  write('page.html', html);
  write('result.json', JSON.stringify({
    url: redact(callback.href),
    status,
    title: await page.title(),
    text: await page.locator('body').innerText(),
    html_contains: [...callback.searchParams]
      .filter(([, value]) => value.length >= 8 && html.includes(value))
      .map(([name]) => name),
  }));
}

async function main() {
  if (!outDir || !authorizeUrl) throw new Error('usage: node chromium-login.mjs OUT_DIR AUTHORIZE_URL');
  const context = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(outDir, 'profile-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 60_000,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--disable-gpu',
      // Chromium never sends loopback traffic through a proxy; everything
      // else would go to this closed port and fail.
      '--proxy-server=http://127.0.0.1:9',
    ],
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  try {
    await login(context.pages()[0] ?? await context.newPage());
  } finally {
    await context.close();
  }
}

main().then(() => process.exit(0), (err) => {
  write('error.txt', redact(err?.stack || err));
  process.exit(1);
});
