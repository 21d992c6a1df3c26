// Self-test of the test IdP (server.js + browser.js): `npm test` in tests/idp.
// Uses only 127.0.0.1 / localhost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLIENT_ID = 'lightfi-test-client';
const CLIENT_SECRET = 'lightfi-test-secret';
const SCOPE = 'aws.cognito.signin.user.admin';

// A stand-in for the app's loopback callback listener: records request URLs.
async function startCallback() {
  const hits = [];
  const srv = http.createServer((req, res) => {
    hits.push(req.url);
    res.end('ok');
  });
  await new Promise((r) => { srv.listen(0, '127.0.0.1', r); });
  return { hits, port: srv.address().port, close: () => srv.close() };
}

async function startIdp(env) {
  const child = spawn(process.execPath, [path.join(here, 'server.js')], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const rl = readline.createInterface({ input: child.stdout });
  const lines = [];
  const first = await new Promise((resolve, reject) => {
    rl.on('line', (l) => { lines.push(l); if (lines.length === 1) resolve(l); });
    child.on('exit', (code) => reject(new Error(`idp exited ${code}: ${stderr}`)));
  });
  const info = JSON.parse(first);
  return {
    ...info,
    lines,
    stderr: () => stderr,
    stop: () => new Promise((r) => { child.on('exit', r); child.stdin.end(); }),
  };
}

function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

function authorizeUrl(idp, redirectUri, challenge, extra = {}) {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    scope: SCOPE,
    state: 'st-1',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  });
  return `${idp.oauth_url}/authorize?${q}`;
}

function runBrowser(url, env = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(here, 'browser.js'), url], {
      env: { ...process.env, ...env },
    }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

const basic = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;

async function post(idp, endpoint, form) {
  const res = await fetch(`${idp.oauth_url}/${endpoint}`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function login(idp, cb, redirectUri, env) {
  const { verifier, challenge } = pkce();
  const r = await runBrowser(authorizeUrl(idp, redirectUri, challenge), env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  const hit = new URL(cb.hits.at(-1), redirectUri);
  assert.equal(hit.searchParams.get('state'), 'st-1');
  assert.equal(hit.searchParams.get('iss'), idp.issuer);
  const code = hit.searchParams.get('code');
  assert.ok(code);
  const tok = await post(idp, 'token', {
    grant_type: 'authorization_code', client_id: CLIENT_ID, code, redirect_uri: redirectUri, code_verifier: verifier,
  });
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  return { tok: tok.body, code, verifier };
}

function jwtPayload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

test('default mode: code flow, JWT access token, refresh without rotation, revoke', async () => {
  const cb = await startCallback();
  const redirectUri = `http://localhost:${cb.port}`;
  const idp = await startIdp({ IDP_REDIRECT_URI: redirectUri, IDP_ACCESS_TTL: '7' });
  try {
    assert.equal(idp.issuer, `http://127.0.0.1:${idp.port}`);
    assert.equal(idp.oauth_url, `${idp.issuer}/oauth2`);

    const { tok } = await login(idp, cb, redirectUri, { IDP_USER: 'alice' });
    assert.equal(tok.token_type, 'Bearer');
    assert.equal(tok.expires_in, 7);
    assert.equal(tok.scope, SCOPE);
    assert.ok(tok.refresh_token);
    const claims = jwtPayload(tok.access_token);
    assert.equal(claims.username, 'alice');
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.client_id, CLIENT_ID);
    assert.equal(claims.scope, SCOPE);
    assert.equal(claims.exp - claims.iat, 7);

    for (let i = 0; i < 2; i += 1) {
      const r = await post(idp, 'token', { grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: tok.refresh_token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.access_token);
      assert.equal('refresh_token' in r.body, false);
    }

    const rv = await post(idp, 'revoke', { token: tok.refresh_token, client_id: CLIENT_ID, token_type_hint: 'refresh_token' });
    assert.equal(rv.status, 200);
    const after = await post(idp, 'token', { grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: tok.refresh_token });
    assert.equal(after.status, 400);
    assert.equal(after.body.error, 'invalid_grant');

    // A code is single-use; replaying it fails with invalid_grant and (oidc-provider
    // behaviour, RFC 6749 4.1.2) revokes the tokens issued from it.
    const second = await login(idp, cb, redirectUri, { IDP_USER: 'bob' });
    const again = await post(idp, 'token', {
      grant_type: 'authorization_code', client_id: CLIENT_ID, code: second.code, redirect_uri: redirectUri, code_verifier: second.verifier,
    });
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    const revoked = await post(idp, 'token', { grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: second.tok.refresh_token });
    assert.equal(revoked.status, 400);
    assert.equal(revoked.body.error, 'invalid_grant');

    assert.equal(idp.lines.length, 1);
  } finally {
    await idp.stop();
    cb.close();
  }
});

test('rotation mode: new refresh token each time, old one rejected', async () => {
  const cb = await startCallback();
  const redirectUri = `http://127.0.0.1:${cb.port}/callback`;
  const idp = await startIdp({ IDP_REDIRECT_URI: redirectUri, IDP_ROTATE: '1' });
  try {
    const { tok } = await login(idp, cb, redirectUri, {});
    const r1 = await post(idp, 'token', { grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: tok.refresh_token });
    assert.equal(r1.status, 200);
    assert.ok(r1.body.refresh_token);
    assert.notEqual(r1.body.refresh_token, tok.refresh_token);
    const old = await post(idp, 'token', { grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: tok.refresh_token });
    assert.equal(old.status, 400);
    assert.equal(old.body.error, 'invalid_grant');
    const r2 = await post(idp, 'token', { grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: r1.body.refresh_token });
    assert.equal(r2.status, 200);
    assert.ok(r2.body.refresh_token);
  } finally {
    await idp.stop();
    cb.close();
  }
});

test('deny, bad password, redirect_uri mismatch', async () => {
  const cb = await startCallback();
  const redirectUri = `http://localhost:${cb.port}`;
  const idp = await startIdp({ IDP_REDIRECT_URI: redirectUri });
  try {
    const { challenge } = pkce();
    const denied = await runBrowser(authorizeUrl(idp, redirectUri, challenge), { IDP_DENY: '1' });
    assert.equal(denied.code, 0, denied.stderr);
    const hit = new URL(cb.hits.at(-1), redirectUri);
    assert.equal(hit.searchParams.get('error'), 'access_denied');
    assert.ok(hit.searchParams.get('error_description'));
    assert.equal(hit.searchParams.get('state'), 'st-1');

    const n = cb.hits.length;
    const bad = await runBrowser(authorizeUrl(idp, redirectUri, challenge), { IDP_PASSWORD: 'nope' });
    assert.equal(bad.code, 1);
    assert.equal(cb.hits.length, n);

    const mismatch = await runBrowser(authorizeUrl(idp, `${redirectUri}/`, challenge), {});
    assert.equal(mismatch.code, 1);
    assert.equal(cb.hits.length, n);
  } finally {
    await idp.stop();
    cb.close();
  }
});
