// Cognito-hosted-UI-like OAuth2 authorization server for lightfi-token's
// end-to-end tests, built on panva's oidc-provider. See README.md.
//
// stdout carries exactly one JSON line once listening; everything else goes
// to stderr. The process exits when stdin closes, or on SIGTERM / SIGINT.

import crypto from 'node:crypto';
import http from 'node:http';

// oidc-provider prints notices with console.info (stdout); keep stdout for the
// single JSON line and send all other output to stderr.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const { default: Provider, errors } = await import('oidc-provider');

function envInt(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`idp: ${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const PORT = envInt('IDP_PORT', 0);
const CLIENT_ID = process.env.IDP_CLIENT_ID || 'lightfi-test-client';
const CLIENT_SECRET = process.env.IDP_CLIENT_SECRET || 'lightfi-test-secret';
const REDIRECT_URI = process.env.IDP_REDIRECT_URI;
const ROTATE = process.env.IDP_ROTATE === '1';
const ACCESS_TTL = envInt('IDP_ACCESS_TTL', 5);
const PASSWORD = process.env.IDP_PASSWORD || 'pw';
const SCOPE = 'aws.cognito.signin.user.admin';
// A machine client (client-credentials grant) with a custom scope of its
// own, like a Cognito app client with a resource server's scopes.
const M2M_CLIENT_ID = process.env.IDP_M2M_CLIENT_ID || 'lightfi-test-machine';
const M2M_CLIENT_SECRET = process.env.IDP_M2M_CLIENT_SECRET || 'lightfi-test-machine-secret';
const M2M_SCOPE = 'lightfi-api/read';
// Resource indicator the JWT access tokens are minted for (their `aud`).
const RESOURCE = 'urn:lightfi:test-api';

if (!REDIRECT_URI) {
  console.error('idp: IDP_REDIRECT_URI is required (e.g. http://localhost:41234)');
  process.exit(2);
}
if (ACCESS_TTL < 1) {
  console.error('idp: IDP_ACCESS_TTL must be >= 1');
  process.exit(2);
}

function log(...args) {
  console.error('idp:', ...args);
}

// Bind first so that the issuer can carry the (possibly ephemeral) port.
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

// Fresh RS256 signing key per run (Cognito signs its tokens with RS256).
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'idp-test-key', alg: 'RS256', use: 'sig' };

const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    // 'web' => redirect_uri is matched exactly (no loopback-port leniency).
    application_type: 'web',
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }, {
    // A public client (no secret, PKCE only), like a Cognito app client
    // created without "Generate client secret".
    client_id: `${CLIENT_ID}-public`,
    application_type: 'web',
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }, {
    client_id: M2M_CLIENT_ID,
    client_secret: M2M_CLIENT_SECRET,
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    scope: M2M_SCOPE,
  }],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  routes: {
    authorization: '/oauth2/authorize',
    token: '/oauth2/token',
    revocation: '/oauth2/revoke',
    userinfo: '/oauth2/userInfo',
    jwks: '/.well-known/jwks.json',
    end_session: '/logout',
  },
  // Only code flow, like a Cognito app client with "Authorization code grant".
  responseTypes: ['code'],
  pkce: { methods: ['S256'], required: () => true },
  // Cognito requires redirect_uri on both authorize and token requests.
  allowOmittingSingleRegisteredRedirectUri: false,
  scopes: ['openid', 'offline_access', SCOPE, M2M_SCOPE],
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: `${SCOPE} ${M2M_SCOPE}`,
          audience: RESOURCE,
          accessTokenTTL: ACCESS_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Cognito-ish access token claims (sub, scope, client_id, exp, iat are
  // put in by oidc-provider itself).
  extraTokenClaims: async (_ctx, token) => {
    if (token.kind !== 'AccessToken') return undefined;
    return { username: token.accountId, token_use: 'access' };
  },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, username: sub }),
  }),
  // A refresh token on every code exchange, no offline_access needed.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  rotateRefreshToken: () => ROTATE,
  ttl: {
    AccessToken: ACCESS_TTL,
    ClientCredentials: ACCESS_TTL,
    AuthorizationCode: 300,
    Grant: 24 * 60 * 60,
    Interaction: 600,
    RefreshToken: 24 * 60 * 60,
    Session: 24 * 60 * 60,
    IdToken: 3600,
  },
  renderError: async (ctx, out, error) => {
    log('renderError:', out.error, out.error_description, error?.message ?? '');
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><body><h1>oops</h1><pre>${escapeHtml(JSON.stringify(out, null, 2))}</pre></body></html>`;
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

// Rotation mode: a used (rotated-out) refresh token must simply be rejected
// with invalid_grant, like Cognito. oidc-provider's default is to mark it
// "consumed" and, on reuse, revoke the whole grant (including the new token);
// deleting it instead makes reuse a plain "not found" => invalid_grant.
provider.RefreshToken.prototype.consume = async function consume() {
  await this.destroy();
};

provider.on('server_error', (_ctx, err) => log('server_error:', err));
provider.on('grant.error', (_ctx, err) => log('grant.error:', err.message, err.error_description ?? ''));
provider.on('authorization.error', (_ctx, err) => log('authorization.error:', err.message, err.error_description ?? ''));
provider.on('revocation.error', (_ctx, err) => log('revocation.error:', err.message, err.error_description ?? ''));

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid, clientId, error) {
  const action = `/interaction/${encodeURIComponent(uid)}`;
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in to ${escapeHtml(clientId)}</h1>
${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${action}">
  <input type="hidden" name="action" value="login">
  <label>Username <input type="text" name="username" autocomplete="username" autofocus></label>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label>
  <button type="submit" name="submit" value="1">Sign in</button>
  <button type="submit" name="deny" value="1">Cancel</button>
</form>
</body>
</html>
`;
}

// Grant everything the consent prompt says is missing (auto-consent).
async function autoConsent(interaction) {
  const { prompt: { details }, params, session } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  if (details.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  return { consent: { grantId } };
}

// Access log (stderr), and the tokens issued by client credentials, which
// tests compare with lightfi-token's own count: GET /test/counts.
let machineTokens = 0;
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/test/counts') {
    ctx.body = { client_credentials: machineTokens };
    return undefined;
  }
  const t0 = Date.now();
  try {
    await next();
    if (ctx.path === '/oauth2/token' && ctx.status === 200 && ctx.oidc?.params?.grant_type === 'client_credentials') {
      machineTokens += 1;
    }
  } finally {
    log(`${ctx.method} ${ctx.path} -> ${ctx.status} (${Date.now() - t0}ms)`);
  }
  return undefined;
});

// Exact (string) redirect_uri matching, like Cognito. oidc-provider itself
// compares WHATWG-normalized URLs, so it would accept e.g. a trailing "/".
provider.use(async (ctx, next) => {
  if (ctx.path === '/oauth2/authorize' && ctx.method === 'GET') {
    const got = ctx.query.redirect_uri;
    if (got !== undefined && got !== REDIRECT_URI) {
      log(`authorize: redirect_uri ${JSON.stringify(got)} does not exactly match ${JSON.stringify(REDIRECT_URI)}`);
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = '<!DOCTYPE html><html><body><h1>redirect_mismatch</h1></body></html>\n';
      return undefined;
    }
  }
  return next();
});

// Interaction (login / consent) routes, mounted in front of oidc-provider.
provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([^/]+)$/.exec(ctx.path);
  if (!m) return next();
  ctx.set('cache-control', 'no-store');

  let interaction;
  try {
    interaction = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    log('interaction lookup failed:', err.message);
    ctx.status = 400;
    ctx.type = 'text';
    ctx.body = `interaction not found: ${err.message}\n`;
    return undefined;
  }
  if (interaction.uid !== decodeURIComponent(m[1])) {
    ctx.status = 400;
    ctx.type = 'text';
    ctx.body = 'interaction uid mismatch\n';
    return undefined;
  }

  const finish = async (result) => {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
  };

  if (ctx.method === 'GET') {
    if (interaction.prompt.name === 'consent') {
      log(`auto-consent for ${interaction.session?.accountId}`);
      return finish(await autoConsent(interaction));
    }
    ctx.type = 'html';
    ctx.body = loginPage(interaction.uid, interaction.params.client_id);
    return undefined;
  }

  if (ctx.method === 'POST') {
    const form = await readForm(ctx.req);
    if (form.get('deny')) {
      log('login denied by user');
      return finish({
        error: 'access_denied',
        error_description: 'End-User aborted interaction',
      });
    }
    if (interaction.prompt.name === 'consent') {
      return finish(await autoConsent(interaction));
    }
    const username = (form.get('username') || '').trim();
    const password = form.get('password') || '';
    if (!username || password !== PASSWORD) {
      log(`login failed for ${JSON.stringify(username)}`);
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(interaction.uid, interaction.params.client_id, 'Incorrect username or password.');
      return undefined;
    }
    log(`login ok: ${username}`);
    return finish({ login: { accountId: username } });
  }

  ctx.status = 405;
  return undefined;
});

// Cognito default (no rotation): the refresh response carries no
// refresh_token field. oidc-provider echoes the presented one; strip it.
provider.use(async (ctx, next) => {
  await next();
  if (
    !ROTATE
    && ctx.method === 'POST'
    && ctx.path === '/oauth2/token'
    && ctx.status === 200
    && ctx.oidc?.params?.grant_type === 'refresh_token'
    && ctx.body && typeof ctx.body === 'object'
  ) {
    delete ctx.body.refresh_token;
  }
});

server.on('request', provider.callback());

let closing = false;
function shutdown(why) {
  if (closing) return;
  closing = true;
  log(`shutting down (${why})`);
  server.close();
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 200).unref();
  process.exitCode = 0;
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

if (process.env.IDP_IGNORE_STDIN !== '1') {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

log(`listening on ${issuer} (client_id=${CLIENT_ID}, redirect_uri=${REDIRECT_URI}, rotate=${ROTATE}, access_ttl=${ACCESS_TTL}s)`);
process.stdout.write(`${JSON.stringify({ port, issuer, oauth_url: `${issuer}/oauth2` })}\n`);
