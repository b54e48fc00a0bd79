#!/usr/bin/env node
// MLaaS4HEP dev IAM: a local OpenID provider that behaves like INDIGO IAM.
//
// Built on oidc-provider (v9). For development and tests only: it binds 127.0.0.1,
// keeps sessions, grants and refresh tokens in memory, and knows a few demo users.
// Run `node server.mjs --help` for the options; see README.md.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ORGANISATION = 'mlaas4hep-dev';
const TITLE = 'MLaaS4HEP dev IAM';
const SCOPES = ['openid', 'profile', 'email', 'offline_access', 'wlcg.groups'];
const ALLOWED_HOSTS = new Set(['127.0.0.1']);
const MAX_BODY = 64 * 1024;

const USAGE = `Usage: node server.mjs [options]

  --port N                 listen port (default 9000; env DEVIDP_PORT)
  --host 127.0.0.1         listen address; only 127.0.0.1 is accepted (env DEVIDP_HOST)
  --issuer URL             issuer (default http(s)://127.0.0.1:PORT; env DEVIDP_ISSUER)
  --tls-cert FILE          serve HTTPS with this PEM certificate (chain); needs --tls-key
                           (env DEVIDP_TLS_CERT)
  --tls-key FILE           PEM private key of --tls-cert (env DEVIDP_TLS_KEY)
  --audience URI           aud of the JWT access tokens (default: the issuer; env DEVIDP_AUDIENCE)
  --clients FILE           JSON list of clients {client_id, client_secret, redirect_uris, ...}
                           (default: one demo client "mlaas4hep-hub"; env DEVIDP_CLIENTS)
  --users FILE             JSON list of users {username, password, ...} (default: alice, bob, eve;
                           env DEVIDP_USERS)
  --access-token-ttl SECS  access token lifetime (default 3600; env DEVIDP_ACCESS_TOKEN_TTL)
  --refresh-token-ttl SECS refresh token lifetime (default 1209600; env DEVIDP_REFRESH_TOKEN_TTL)
  --state-dir DIR          state folder (default hub/devidp/.state; env DEVIDP_STATE_DIR)
  --keys FILE              RSA signing key (JWKS with private parts), created on first start
                           (default STATE_DIR/jwks.json; env DEVIDP_KEYS)
  --auto-consent           skip the consent page (consent is implied for every configured client)
  --help                   this text
`;

// ---------------------------------------------------------------- logging

function log(message) {
  // Never pass tokens, secrets, passwords or full URLs with query strings here.
  process.stdout.write(`${new Date().toISOString()} devidp ${message}\n`);
}

function fail(message) {
  process.stderr.write(`devidp: ${message}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- configuration

function readConfig(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        issuer: { type: 'string' },
        audience: { type: 'string' },
        clients: { type: 'string' },
        users: { type: 'string' },
        'access-token-ttl': { type: 'string' },
        'refresh-token-ttl': { type: 'string' },
        'state-dir': { type: 'string' },
        keys: { type: 'string' },
        'auto-consent': { type: 'boolean' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    fail(`${err.message}\n\n${USAGE}`);
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const env = process.env;
  const pick = (name, envName, fallback) => parsed[name] ?? env[envName] ?? fallback;

  const intOption = (name, envName, fallback, min) => {
    const raw = pick(name, envName, String(fallback));
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) {
      fail(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    }
    return value;
  };

  const port = intOption('port', 'DEVIDP_PORT', 9000, 1);
  if (port > 65535) fail('--port must be <= 65535');
  const host = pick('host', 'DEVIDP_HOST', '127.0.0.1');
  if (!ALLOWED_HOSTS.has(host)) fail(`--host must be 127.0.0.1 (got ${JSON.stringify(host)})`);

  const tlsCert = pick('tls-cert', 'DEVIDP_TLS_CERT', undefined);
  const tlsKey = pick('tls-key', 'DEVIDP_TLS_KEY', undefined);
  if (Boolean(tlsCert) !== Boolean(tlsKey)) fail('--tls-cert and --tls-key go together');
  const scheme = tlsCert ? 'https' : 'http';
  const issuer = pick('issuer', 'DEVIDP_ISSUER', `${scheme}://${host}:${port}`).replace(/\/+$/, '');
  const issuerUrl = URL.parse(issuer);
  if (!issuerUrl || !['http:', 'https:'].includes(issuerUrl.protocol)
      || issuerUrl.search || issuerUrl.hash || (issuerUrl.pathname !== '/' && issuerUrl.pathname !== '')) {
    fail('--issuer must be an http(s) URL without path, query or fragment');
  }
  const audience = pick('audience', 'DEVIDP_AUDIENCE', issuer);
  if (!URL.parse(audience) || audience.includes('#')) fail('--audience must be an absolute URI without fragment');

  const stateDir = path.resolve(pick('state-dir', 'DEVIDP_STATE_DIR', path.join(HERE, '.state')));
  const keysFile = path.resolve(pick('keys', 'DEVIDP_KEYS', path.join(stateDir, 'jwks.json')));

  return {
    port,
    host,
    issuer,
    audience,
    clientsFile: pick('clients', 'DEVIDP_CLIENTS', undefined),
    usersFile: pick('users', 'DEVIDP_USERS', undefined),
    accessTokenTTL: intOption('access-token-ttl', 'DEVIDP_ACCESS_TOKEN_TTL', 3600, 1),
    refreshTokenTTL: intOption('refresh-token-ttl', 'DEVIDP_REFRESH_TOKEN_TTL', 14 * 24 * 3600, 1),
    stateDir,
    keysFile,
    autoConsent: Boolean(parsed['auto-consent']) || env.DEVIDP_AUTO_CONSENT === '1',
    tls: tlsCert ? { cert: readFile(tlsCert, 'TLS certificate'), key: readFile(tlsKey, 'TLS key') }
      : null,
  };
}

function readFile(file, what) {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    return fail(`cannot read ${what} file ${file}: ${err.message}`);
  }
}

function readJson(file, what) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    return fail(`cannot read ${what} file ${file}: ${err.message}`);
  }
}

/** A stable UUID-looking subject derived from the username (like IAM's UUID subs). */
function stableSub(username) {
  const hex = crypto.createHash('sha1').update(`${ORGANISATION}:${username}`).digest('hex');
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const DEMO_USERS = [
  { username: 'alice', password: 'alice-pass', name: 'Alice Analyst', groups: ['cms', 'cms/ml'] },
  { username: 'bob', password: 'bob-pass', name: 'Bob Builder', groups: ['cms'] },
  { username: 'eve', password: 'eve-pass', name: 'Eve Atlas', groups: ['atlas'] },
];

function loadUsers(file) {
  const raw = file ? readJson(file, 'users') : DEMO_USERS;
  if (!Array.isArray(raw) || raw.length === 0) fail('users must be a non-empty JSON list');
  const bySub = new Map();
  const byName = new Map();
  for (const entry of raw) {
    if (!entry || typeof entry.username !== 'string' || typeof entry.password !== 'string'
        || !entry.username || !entry.password) {
      fail('every user needs a non-empty "username" and "password"');
    }
    const groups = Array.isArray(entry.groups) ? entry.groups.map(String) : [];
    const user = {
      username: entry.username,
      password: entry.password,
      sub: entry.sub || stableSub(entry.username),
      name: entry.name || entry.username,
      email: entry.email || `${entry.username}@${ORGANISATION}.example`,
      groups,
      wlcgGroups: Array.isArray(entry['wlcg.groups'])
        ? entry['wlcg.groups'].map(String)
        : groups.map((g) => `/${g}`),
    };
    if (byName.has(user.username)) fail(`duplicate user ${user.username}`);
    byName.set(user.username, user);
    bySub.set(user.sub, user);
  }
  return { bySub, byName };
}

function loadClients(file) {
  const raw = file ? readJson(file, 'clients') : [{
    client_id: 'mlaas4hep-hub',
    client_secret: 'mlaas4hep-hub-dev-secret',
    redirect_uris: ['http://127.0.0.1:8000/hub/oauth_callback'],
  }];
  if (!Array.isArray(raw) || raw.length === 0) fail('clients must be a non-empty JSON list');
  return raw.map((entry) => {
    if (!entry || typeof entry.client_id !== 'string' || typeof entry.client_secret !== 'string'
        || !Array.isArray(entry.redirect_uris) || entry.redirect_uris.length === 0) {
      fail('every client needs "client_id", "client_secret" and a non-empty "redirect_uris" list');
    }
    return {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...entry,
    };
  });
}

// ---------------------------------------------------------------- keys

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

function loadOrCreateKeys(file) {
  if (fs.existsSync(file)) {
    const jwks = readJson(file, 'keys');
    if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0 || !jwks.keys[0].d) {
      fail(`keys file ${file} holds no private key`);
    }
    log(`loaded signing key kid=${jwks.keys[0].kid} from ${file}`);
    return jwks;
  }
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const thumbprint = crypto.createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest();
  const jwks = { keys: [{ ...jwk, kid: b64url(thumbprint), alg: 'RS256', use: 'sig' }] };
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  log(`created signing key kid=${jwks.keys[0].kid} in ${file}`);
  return jwks;
}

// ---------------------------------------------------------------- HTML

function esc(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function page(body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${TITLE}</title>
<style>body{font-family:sans-serif;max-width:26em;margin:3em auto;padding:0 1em}
input,button{display:block;width:100%;margin:.4em 0;padding:.4em;box-sizing:border-box}
.error{color:#b00020}.muted{color:#555;font-size:.9em}</style>
</head>
<body>
<h1>${TITLE}</h1>
${body}
</body>
</html>
`;
}

function loginPage(uid, { error, login, clientId } = {}) {
  return page(`<p>Sign in to continue to <b>${esc(clientId)}</b>.</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label>Username <input type="text" name="login" value="${esc(login || '')}" required autofocus></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Cancel</button></form>
<p class="muted">Development identity provider: demo accounts only.</p>`);
}

function consentPage(uid, { clientId, username, scopes }) {
  const items = scopes.map((s) => `<li>${esc(s)}</li>`).join('');
  return page(`<p>Signed in as <b>${esc(username)}</b>.</p>
<p><b>${esc(clientId)}</b> asks for access to:</p>
<ul>${items}</ul>
<form method="post" action="/interaction/${esc(uid)}/confirm"><button type="submit">Authorize</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Deny</button></form>`);
}

function errorPage(title, detail) {
  return page(`<p class="error">${esc(title)}</p>${detail ? `<p>${esc(detail)}</p>` : ''}`);
}

// ---------------------------------------------------------------- helpers

function safeEqual(a, b) {
  const ha = crypto.createHash('sha256').update(String(a)).digest();
  const hb = crypto.createHash('sha256').update(String(b)).digest();
  return crypto.timingSafeEqual(ha, hb);
}

async function readForm(req) {
  const type = req.headers['content-type'] || '';
  if (!type.startsWith('application/x-www-form-urlencoded')) return new URLSearchParams();
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The request path for the log: interaction and resume ids replaced by ":uid". */
function logPath(p) {
  return p.replace(/^\/(interaction|authorize)\/[\w-]+/, '/$1/:uid').slice(0, 200);
}

function accountClaims(user) {
  return {
    sub: user.sub,
    preferred_username: user.username,
    name: user.name,
    organisation_name: ORGANISATION,
    email: user.email,
    email_verified: true,
    groups: [...user.groups],
    'wlcg.groups': [...user.wlcgGroups],
  };
}

// Which claims each scope releases (used by oidc-provider for ID tokens and by our userinfo).
const CLAIMS = {
  openid: ['sub'],
  profile: ['preferred_username', 'name', 'organisation_name'],
  email: ['email', 'email_verified'],
  'wlcg.groups': ['groups', 'wlcg.groups'],
};

function claimsForScope(user, scope) {
  const all = accountClaims(user);
  const out = {};
  for (const s of scope.split(' ')) {
    for (const claim of CLAIMS[s] || []) out[claim] = all[claim];
  }
  out.sub = user.sub;
  return out;
}

// ---------------------------------------------------------------- provider

function buildProvider(cfg, users, clients, jwks) {
  const resourceServer = {
    scope: SCOPES.join(' '),
    audience: cfg.audience,
    accessTokenTTL: cfg.accessTokenTTL,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };

  const configuration = {
    clients,
    jwks,
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    scopes: SCOPES,
    claims: CLAIMS,
    responseTypes: ['code'],
    routes: {
      authorization: '/authorize',
      token: '/token',
      userinfo: '/userinfo',
      jwks: '/jwk',
      revocation: '/revoke',
      end_session: '/logout',
    },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      revocation: { enabled: true, allowedPolicy: () => true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page(`<p>Sign out of ${TITLE}?</p>${form}
<button form="op.logoutForm" type="submit" name="logout" value="yes">Sign out</button>
<button form="op.logoutForm" type="submit">Stay signed in</button>`);
        },
        postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('<p>You are signed out.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        // Every access token is a JWT for cfg.audience (like IAM's JWT access tokens).
        defaultResource: () => cfg.audience,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resourceIndicator) {
          if (resourceIndicator !== cfg.audience) {
            throw new errors.InvalidTarget(`unknown resource; this provider only issues tokens for ${cfg.audience}`);
          }
          return resourceServer;
        },
      },
    },
    async findAccount(ctx, sub) {
      const user = users.bySub.get(sub);
      if (!user) return undefined;
      return { accountId: sub, claims: async () => accountClaims(user) };
    },
    async extraTokenClaims(ctx, token) {
      if (token.kind !== 'AccessToken') return undefined;
      const user = users.bySub.get(token.accountId);
      if (!user) return undefined;
      const scopes = new Set((token.scope || '').split(' '));
      const extra = {
        azp: token.clientId,
        preferred_username: user.username,
        organisation_name: ORGANISATION,
      };
      if (scopes.has('profile')) extra.name = user.name;
      if (scopes.has('email')) extra.email = user.email;
      if (scopes.has('wlcg.groups')) {
        extra.groups = [...user.groups];
        extra['wlcg.groups'] = [...user.wlcgGroups];
        extra['wlcg.ver'] = '1.0';
      }
      return extra;
    },
    // IAM issues refresh tokens whenever the client may use them; oidc-provider would
    // otherwise need offline_access *and* prompt=consent in the authorization request.
    issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Tokens outlive the browser session at the IdP, as with IAM.
    expiresWithSession: () => false,
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (!cfg.autoConsent) return undefined;
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(SCOPES.join(' '));
      grant.addOIDCClaims(Object.values(CLAIMS).flat());
      grant.addResourceScope(cfg.audience, SCOPES.join(' '));
      await grant.save();
      return grant;
    },
    pkce: { required: (ctx, client) => client.clientAuthMethod === 'none' },
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || cfg.accessTokenTTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: cfg.refreshTokenTTL,
      Interaction: 600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      ClientCredentials: 600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      PreAuthorizedCode: 600,
    },
    clientBasedCORS: () => false,
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = errorPage(out.error, out.error_description);
    },
  };

  const provider = new Provider(cfg.issuer, configuration);
  provider.on('server_error', (ctx, err) => log(`server_error: ${err?.name}: ${err?.message}`));
  for (const event of ['authorization.error', 'grant.error', 'userinfo.error',
    'end_session.error', 'revocation.error']) {
    provider.on(event, (ctx, err) => log(`${event}: ${err?.error || err?.name}: ${err?.error_description || ''}`));
  }
  provider.on('grant.success', (ctx) => {
    log(`token issued: grant_type=${ctx.oidc.params?.grant_type} client=${ctx.oidc.client?.clientId}`);
  });
  return provider;
}

// ---------------------------------------------------------------- interactions

async function handleInteraction(provider, users, ctx) {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
  if (!match) {
    ctx.status = 404;
    ctx.type = 'html';
    ctx.body = errorPage('Not found');
    return;
  }
  const [, uid, action] = match;
  ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.type = 'html';

  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.body = errorPage('This sign-in request has expired or is invalid.', 'Please start again from the application.');
    log(`interaction error: ${err?.name}`);
    return;
  }
  if (details.uid !== uid) {
    ctx.status = 400;
    ctx.body = errorPage('This sign-in request does not match your browser session.');
    return;
  }
  const { prompt, params } = details;
  const clientId = params.client_id;

  const finish = async (result, merge) => {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.redirect(to);
  };

  if (ctx.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      ctx.body = loginPage(uid, { clientId, login: params.login_hint });
    } else if (prompt.name === 'consent') {
      const user = users.bySub.get(details.session?.accountId);
      ctx.body = consentPage(uid, {
        clientId,
        username: user?.username ?? '?',
        scopes: String(params.scope || 'openid').split(' '),
      });
    } else {
      ctx.status = 400;
      ctx.body = errorPage(`Unsupported prompt ${prompt.name}`);
    }
    return;
  }
  if (ctx.method !== 'POST' || !action) {
    ctx.status = 405;
    ctx.body = errorPage('Method not allowed');
    return;
  }

  const form = await readForm(ctx.req);

  if (action === 'abort') {
    await finish({ error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
    return;
  }

  if (action === 'login') {
    if (prompt.name !== 'login') {
      ctx.status = 400;
      ctx.body = errorPage('Unexpected login submission.');
      return;
    }
    const login = form.get('login') || '';
    const user = users.byName.get(login);
    // Compare even for unknown users, so timing does not reveal which names exist.
    const ok = safeEqual(form.get('password') || '', user ? user.password : '\0unknown')
      && Boolean(user);
    if (!ok) {
      log(`login failed for username=${JSON.stringify(login.slice(0, 64))}`);
      ctx.status = 401;
      ctx.body = loginPage(uid, { clientId, login, error: 'Invalid username or password' });
      return;
    }
    log(`login ok for username=${user.username} client=${clientId}`);
    await finish({ login: { accountId: user.sub } }, false);
    return;
  }

  // action === 'confirm'
  if (prompt.name !== 'consent') {
    ctx.status = 400;
    ctx.body = errorPage('Unexpected consent submission.');
    return;
  }
  const { details: missing } = prompt;
  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
  } else {
    grant = new provider.Grant({ accountId: details.session.accountId, clientId });
  }
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  log(`consent given by ${users.bySub.get(details.session.accountId)?.username} to client=${clientId}`);
  await finish({ consent: details.grantId ? {} : { grantId } }, true);
}

// ---------------------------------------------------------------- userinfo for JWT access tokens

function makeJwtVerifier(cfg, jwks) {
  const publicKeys = new Map(jwks.keys.map((k) => {
    const { d, p, q, dp, dq, qi, ...pub } = k; // eslint-disable-line no-unused-vars
    return [k.kid, crypto.createPublicKey({ key: pub, format: 'jwk' })];
  }));
  return function verify(token) {
    const parts = token.split('.');
    if (parts.length !== 3) throw new Error('malformed token');
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    if (header.alg !== 'RS256' || header.typ !== 'at+jwt') throw new Error('unexpected token type');
    const key = publicKeys.get(header.kid);
    if (!key) throw new Error('unknown key');
    const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`),
      key, Buffer.from(parts[2], 'base64url'));
    if (!ok) throw new Error('bad signature');
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    const now = Math.floor(Date.now() / 1000);
    if (claims.iss !== cfg.issuer) throw new Error('wrong issuer');
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(cfg.audience)) throw new Error('wrong audience');
    if (typeof claims.exp !== 'number' || claims.exp <= now) throw new Error('token expired');
    return claims;
  };
}

function userinfoError(ctx, status, error, description) {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  if (status === 401 || status === 403) {
    ctx.set('WWW-Authenticate', `Bearer realm="${ctx.oidc?.issuer ?? 'devidp'}", error="${error}", error_description="${description}"`);
  }
  ctx.body = { error, error_description: description };
}

/**
 * oidc-provider's own userinfo endpoint only accepts opaque access tokens without an
 * audience; JWT access tokens are not stored, so it cannot find them. IAM's userinfo
 * accepts its JWT access tokens, so we answer userinfo requests carrying a JWT here.
 */
async function handleJwtUserinfo(cfg, users, clientIds, verify, ctx, token) {
  let claims;
  try {
    claims = verify(token);
  } catch (err) {
    userinfoError(ctx, 401, 'invalid_token', `invalid access token (${err.message})`);
    return;
  }
  const scope = typeof claims.scope === 'string' ? claims.scope : '';
  if (!scope.split(' ').includes('openid')) {
    userinfoError(ctx, 403, 'insufficient_scope', 'access token missing openid scope');
    return;
  }
  const user = users.bySub.get(claims.sub);
  if (!user || !clientIds.has(claims.client_id)) {
    userinfoError(ctx, 401, 'invalid_token', 'unknown subject or client');
    return;
  }
  ctx.set('Cache-Control', 'no-store');
  ctx.body = claimsForScope(user, scope);
}

// ---------------------------------------------------------------- main

function main() {
  const cfg = readConfig(process.argv.slice(2));
  const users = loadUsers(cfg.usersFile);
  const clients = loadClients(cfg.clientsFile);
  const jwks = loadOrCreateKeys(cfg.keysFile);
  const provider = buildProvider(cfg, users, clients, jwks);
  const verify = makeJwtVerifier(cfg, jwks);
  const clientIds = new Set(clients.map((c) => c.client_id));

  provider.use(async (ctx, next) => {
    const started = Date.now();
    try {
      if (ctx.path.startsWith('/interaction/')) {
        await handleInteraction(provider, users, ctx);
      } else if (ctx.path === '/userinfo' && ['GET', 'POST'].includes(ctx.method)) {
        const m = /^Bearer\s+([\w-]+\.[\w-]+\.[\w-]+)$/i.exec(ctx.get('authorization') || '');
        if (m) {
          await handleJwtUserinfo(cfg, users, clientIds, verify, ctx, m[1]);
        } else {
          await next();
        }
      } else {
        await next();
      }
    } catch (err) {
      log(`error handling ${ctx.method} ${logPath(ctx.path)}: ${err?.name}: ${err?.message}`);
      ctx.status = 500;
      ctx.type = 'html';
      ctx.body = errorPage('Internal error');
    } finally {
      // Path only (query strings may carry codes or state), interaction ids masked.
      log(`${ctx.method} ${logPath(ctx.path)} -> ${ctx.status} (${Date.now() - started} ms)`);
    }
  });
  // Koa would print errors with their context to stderr; keep them short and token-free.
  provider.silent = true;
  provider.on('error', (err) => log(`koa error: ${err?.name}: ${err?.message}`));

  const server = cfg.tls ? https.createServer(cfg.tls, provider.callback())
    : http.createServer(provider.callback());
  server.on('error', (err) => fail(`cannot listen on ${cfg.host}:${cfg.port}: ${err.message}`));
  server.listen(cfg.port, cfg.host, () => {
    log(`listening on ${cfg.tls ? 'https' : 'http'}://${cfg.host}:${cfg.port} issuer=${cfg.issuer} audience=${cfg.audience}`
      + ` clients=${[...clientIds].join(',')} users=${[...users.byName.keys()].join(',')}`
      + ` access_token_ttl=${cfg.accessTokenTTL}s auto_consent=${cfg.autoConsent}`);
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    log(`${signal} received, shutting down`);
    server.close(() => {
      log('stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2000).unref();
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
