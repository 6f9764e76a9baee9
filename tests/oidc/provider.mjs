// panva's oidc-provider as the real authorization server of connctl's OAuth
// tests, behind its own TLS front (node:https, asking for a client
// certificate for tls_client_auth). Started once per test binary by
// tests/cli/outbound_oidc.rs; prints {"port": N} on stdout when listening.
//
// Env: OIDC_CERT, OIDC_KEY (server certificate for localhost), OIDC_CA (the CA
// that issues client certificates), OIDC_EC_KEY_PUB / OIDC_RSA_KEY_PUB (PEM
// public keys of the clients that sign), OIDC_MTLS_DN (subject DN of the test
// client certificate).
//
// Besides the provider:  /api  is a resource server that validates the bearer
// token by introspection; /test/* lets the test look at and break state.
import fs from 'node:fs';
import https from 'node:https';
import crypto from 'node:crypto';
import Provider, { errors } from 'oidc-provider';
import * as jose from 'jose';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const jwk = (path) => crypto.createPublicKey(fs.readFileSync(env(path))).export({ format: 'jwk' });
const ecJwk = { ...jwk('OIDC_EC_KEY_PUB'), kid: 'ec-1', alg: 'ES256', use: 'sig' };
const rsaJwk = { ...jwk('OIDC_RSA_KEY_PUB'), kid: 'rsa-1', alg: 'RS256', use: 'sig' };

const server = https.createServer({
  cert: fs.readFileSync(env('OIDC_CERT')),
  key: fs.readFileSync(env('OIDC_KEY')),
  ca: fs.readFileSync(env('OIDC_CA')),
  requestCert: true,
  rejectUnauthorized: false,
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = server.address().port;
const issuer = `https://localhost:${port}`;

// What the test can ask about afterwards.
const lastRefresh = new Map(); // client id -> latest refresh token value
const assertions = []; // verified jwt-bearer assertion claims
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const provider = new Provider(issuer, {
  clients: [
    { client_id: 'resource-server', client_secret: 'rs-secret', grant_types: [], response_types: [], redirect_uris: [] },
    // One public app per test that logs in, so no test revokes another's tokens.
    ...['native-app', 'native-app2', 'native-app3'].map((client_id) => ({
      client_id, token_endpoint_auth_method: 'none', application_type: 'native',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    })),
    {
      client_id: 'device-app', token_endpoint_auth_method: 'none', application_type: 'native',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [], redirect_uris: [],
    },
    {
      client_id: 'device-short', token_endpoint_auth_method: 'none', application_type: 'native',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [],
    },
    {
      client_id: 'pkjwt-client', token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [ecJwk] },
      grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
    },
    {
      // The device flow with private_key_jwt: every poll needs an assertion
      // of its own (the provider refuses a jti it has seen).
      client_id: 'device-pkjwt', token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [ecJwk] },
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [],
    },
    {
      client_id: 'jwt-client', client_secret: 'jwt-secret', token_endpoint_auth_method: 'client_secret_post',
      jwks: { keys: [rsaJwk] }, grant_types: [JWT_BEARER], response_types: [], redirect_uris: [],
    },
    {
      client_id: 'mtls-client', token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: env('OIDC_MTLS_DN'),
      grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
    },
  ],
  scopes: ['openid', 'offline_access'],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'none'],
  clientBasedCORS: () => false,
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true },
    mTLS: {
      enabled: true,
      tlsClientAuth: true,
      getCertificate(ctx) {
        const cert = ctx.req.socket.getPeerCertificate?.(false);
        return cert && cert.raw ? new crypto.X509Certificate(cert.raw) : undefined;
      },
      certificateAuthorized(ctx) {
        return ctx.req.socket.authorized === true;
      },
      certificateSubjectMatches(ctx, property, expected) {
        if (property !== 'tls_client_auth_subject_dn') return false;
        const cert = ctx.req.socket.getPeerCertificate?.(false);
        const dn = Object.entries(cert?.subject ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
        return dn === expected;
      },
    },
  },
  pkce: { required: () => true },
  // Consent is taken as given: the test drives the login form only.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid offline_access');
    await grant.save();
    return grant;
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Short access tokens for the login grants: the test waits for expiry and refresh.
  ttl: {
    AccessToken: (ctx, token, client) => (client && /^(native-app|device-app)/.test(client.clientId) ? 33 : 600),
    ClientCredentials: 600,
    DeviceCode: (ctx, token, client) => (client?.clientId === 'device-short' ? 4 : 600),
  },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id }; } };
  },
});
provider.proxy = false;

provider.on('refresh_token.saved', (token) => lastRefresh.set(token.clientId, token.jti));

// RFC 7523 §2.1: the assertion is the grant, verified with the client's key.
provider.registerGrantType(JWT_BEARER, async (ctx) => {
  const { client } = ctx.oidc;
  const keys = jose.createLocalJWKSet({ keys: [rsaJwk, ecJwk] });
  let claims;
  try {
    ({ payload: claims } = await jose.jwtVerify(ctx.oidc.params.assertion, keys, {
      issuer: client.clientId,
      audience: `${issuer}/token`,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
    }));
  } catch (e) {
    throw new errors.InvalidGrant(`assertion refused: ${e.code || e.message}`);
  }
  assertions.push(claims);
  const token = new provider.ClientCredentials({ client });
  const value = await token.save();
  ctx.body = { access_token: value, token_type: 'Bearer', expires_in: token.expiration };
}, new Set(['assertion', 'scope']));

async function introspect(token) {
  const res = await fetch(`${issuer}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('resource-server:rs-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  return res.json();
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  try {
    if (url.pathname === '/api') {
      const bearer = (req.headers.authorization || '').replace(/^Bearer /, '');
      const info = bearer ? await introspect(bearer) : { active: false };
      return info.active ? send(200, { api: 'ok', client_id: info.client_id, sub: info.sub ?? null })
        : send(401, { error: 'invalid_token' });
    }
    if (url.pathname === '/test/refresh-active') {
      const value = lastRefresh.get(url.searchParams.get('client'));
      return send(200, value ? await introspect(value) : { active: false, none: true });
    }
    if (url.pathname === '/test/kill-refresh') {
      const value = lastRefresh.get(url.searchParams.get('client'));
      const token = value && await provider.RefreshToken.find(value);
      if (token) await token.destroy();
      return send(200, { killed: !!token });
    }
    if (url.pathname === '/test/assertions') return send(200, assertions);
  } catch (e) {
    return send(500, { error: String(e) });
  }
  return callback(req, res);
});
// Node's own fetch (the resource server's introspection) must trust the test CA.
process.stdout.write(`${JSON.stringify({ port })}\n`);
