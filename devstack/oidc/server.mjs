// devstack/oidc/server.mjs: devstack's OpenID Connect provider (node-oidc-provider), the issuer
// of the JWT access tokens the capsule API accepts as `Authorization: Bearer` tokens.
//
//   node server.mjs --config $STACK_DIR/etc/oidc/config.json
//
// Installed by devstack/lib/oidc next to its node_modules ($STACK_DIR/oidc) and run there in the
// background. Not for production: plain HTTP on loopback, clients and keys from local files,
// state (none needed for client-credentials JWTs) in memory.
//
// What it serves (all from config.json, written by lib/oidc's configure_oidc):
//   - the issuer `issuer`, listening on listen.host:listen.port (plain HTTP);
//   - the client-credentials grant only, client_secret_basic, for the configured clients;
//   - resource indicators (RFC 8707): a token requested for one of `resources` (or for
//     `default_resource` when the request names none) is a JWT (RFC 9068, `typ: at+jwt`) whose
//     `aud` is that resource and whose `scope` is what the client asked for out of the resource's
//     scopes; each client lists the resources it may ask for, the lifetime of its tokens and the
//     algorithm they are signed with (RS256 or ES256).
//
// Keys: one RS256 and one ES256 private key (JWKs with kids: their RFC 7638 thumbprints) in
// `keys_file` (mode 0600), generated when the file does not exist, loaded otherwise.
// SIGHUP rotates them: new keys (new kids) replace the old ones, which leave the JWKS at once
// (tokens they signed no longer verify), the file is rewritten, and a new provider instance takes
// over behind the same listener. SIGTERM/SIGINT stop the server.
//
// Logs one line per request (method, path, status, duration) and every rotation on stdout.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const SIGNING_ALGS = {
  RS256: { type: 'rsa', options: { modulusLength: 2048 } },
  ES256: { type: 'ec', options: { namedCurve: 'P-256' } },
};

function log(message) {
  process.stdout.write(`${new Date().toISOString()} ${message}\n`);
}

function fail(message) {
  process.stderr.write(`${new Date().toISOString()} ERROR: ${message}\n`);
  process.exit(1);
}

// --- configuration ---------------------------------------------------------------------------

function loadConfig(file) {
  let config;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`cannot read the config ${file}: ${err.message}`);
  }
  const need = (cond, what) => {
    if (!cond) fail(`${file}: ${what}`);
  };
  need(typeof config.issuer === 'string' && config.issuer, 'issuer must be a URL');
  need(config.listen && Number.isInteger(config.listen.port), 'listen.port must be an integer');
  need(typeof config.keys_file === 'string' && config.keys_file, 'keys_file must be a path');
  need(config.resources && typeof config.resources === 'object', 'resources must be an object');
  need(Array.isArray(config.clients) && config.clients.length, 'clients must be a non-empty list');
  config.listen.host ??= '127.0.0.1';
  config.access_token_ttl ??= 600;

  // Resource indicators are compared as URLs (a trailing slash on an origin does not matter);
  // the audience a token gets is the resource exactly as configured.
  config.resourceByHref = new Map();
  for (const [identifier, resource] of Object.entries(config.resources)) {
    let href;
    try {
      ({ href } = new URL(identifier));
    } catch {
      fail(`${file}: resource ${identifier} is not an absolute URL`);
    }
    need(typeof resource.scope === 'string', `resources["${identifier}"].scope must be a string`);
    config.resourceByHref.set(href, { identifier, scope: resource.scope });
  }
  if (config.default_resource !== undefined) {
    need(config.resources[config.default_resource], 'default_resource must be one of resources');
  }
  config.clientById = new Map();
  for (const client of config.clients) {
    need(typeof client.client_id === 'string' && client.client_id, 'a client has no client_id');
    need(typeof client.client_secret === 'string' && client.client_secret.length >= 16,
      `client ${client.client_id}: client_secret must be a string of 16 characters or more`);
    client.signing_alg ??= 'RS256';
    need(SIGNING_ALGS[client.signing_alg], `client ${client.client_id}: signing_alg must be one of ${Object.keys(SIGNING_ALGS)}`);
    client.access_token_ttl ??= config.access_token_ttl;
    need(Number.isInteger(client.access_token_ttl) && client.access_token_ttl > 0,
      `client ${client.client_id}: access_token_ttl must be a positive integer`);
    client.resources ??= Object.keys(config.resources);
    for (const r of client.resources) {
      need(config.resources[r], `client ${client.client_id}: resource ${r} is not in resources`);
    }
    config.clientById.set(client.client_id, client);
  }
  return config;
}

// --- keys ------------------------------------------------------------------------------------

// RFC 7638 thumbprint of a public JWK.
function thumbprint(jwk) {
  const members = jwk.kty === 'RSA'
    ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return crypto.createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function generateKey(alg) {
  const { type, options } = SIGNING_ALGS[alg];
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), alg, use: 'sig' };
}

function generateKeys() {
  return Object.keys(SIGNING_ALGS).map(generateKey);
}

// The keys file is a JWKS of private keys: exactly one per algorithm of SIGNING_ALGS.
function loadKeys(file) {
  let jwks;
  try {
    jwks = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`cannot read the keys ${file}: ${err.message} (delete it to have new keys generated)`);
  }
  const keys = Array.isArray(jwks?.keys) ? jwks.keys : [];
  for (const alg of Object.keys(SIGNING_ALGS)) {
    const found = keys.filter((k) => k.alg === alg && typeof k.kid === 'string' && k.d);
    if (found.length !== 1) {
      fail(`${file} must hold exactly one private ${alg} key with a kid (delete it to have new keys generated)`);
    }
  }
  return keys;
}

// Write the keys file atomically (a temporary file renamed over it), mode 0600.
function saveKeys(file, keys) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

function describeKeys(keys) {
  return keys.map((k) => `${k.alg} kid=${k.kid}`).join(', ');
}

// --- the provider ----------------------------------------------------------------------------

// A minimal in-memory adapter: client-credentials JWTs are never stored, so nothing of value is
// kept here (the provider's own memory adapter would do the same, with a warning on every start).
class MemoryAdapter {
  static store = new Map();

  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    MemoryAdapter.store.set(this.key(id), {
      payload, expires: expiresIn ? Date.now() + expiresIn * 1000 : Infinity,
    });
  }

  async find(id) {
    const entry = MemoryAdapter.store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expires <= Date.now()) {
      MemoryAdapter.store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUserCode() {
    return undefined;
  }

  async findByUid() {
    return undefined;
  }

  async consume(id) {
    const payload = await this.find(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    MemoryAdapter.store.delete(this.key(id));
  }

  async revokeByGrantId() {}
}

function makeProvider(config, keys) {
  const scopes = new Set();
  for (const r of Object.values(config.resources)) {
    r.scope.split(' ').filter(Boolean).forEach((s) => scopes.add(s));
  }
  const provider = new Provider(config.issuer, {
    adapter: MemoryAdapter,
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    // No cookies are used (no interactive flows); keys so that the provider does not warn.
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    jwks: { keys },
    scopes: [...scopes],
    // client_secret_post comes along: the provider takes it as equivalent to client_secret_basic.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    claims: { openid: ['sub'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      userinfo: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => config.default_resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator, oidcClient) => {
          const client = config.clientById.get(oidcClient.clientId);
          let href;
          try {
            ({ href } = new URL(indicator));
          } catch {
            throw new errors.InvalidTarget();
          }
          const resource = config.resourceByHref.get(href);
          if (!client || !resource || !client.resources.includes(resource.identifier)) {
            throw new errors.InvalidTarget(`resource ${indicator} is not allowed for this client`);
          }
          return {
            audience: resource.identifier,
            scope: resource.scope,
            accessTokenFormat: 'jwt',
            accessTokenTTL: client.access_token_ttl,
            jwt: { sign: { alg: client.signing_alg } },
          };
        },
      },
    },
    ttl: {
      ClientCredentials: (ctx, token, oidcClient) => token.resourceServer?.accessTokenTTL
        ?? config.clientById.get(oidcClient?.clientId)?.access_token_ttl
        ?? config.access_token_ttl,
    },
    // Any non-JSON error page would do; keep them small.
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.proxy = false;
  for (const event of ['grant.error', 'server_error', 'jwks.error', 'discovery.error']) {
    provider.on(event, (ctx, err) => {
      log(`${event}: ${err.name}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
    });
  }
  return provider;
}

// --- main ------------------------------------------------------------------------------------

const { values: args } = parseArgs({ options: { config: { type: 'string' } } });
if (!args.config) fail('usage: node server.mjs --config CONFIG.json');
const config = loadConfig(args.config);

let keys;
if (fs.existsSync(config.keys_file)) {
  keys = loadKeys(config.keys_file);
  log(`loaded keys from ${config.keys_file}: ${describeKeys(keys)}`);
} else {
  keys = generateKeys();
  saveKeys(config.keys_file, keys);
  log(`generated keys into ${config.keys_file}: ${describeKeys(keys)}`);
}

let handler = makeProvider(config, keys).callback();

const server = http.createServer((req, res) => {
  const started = process.hrtime.bigint();
  const pathname = (req.url || '').split('?')[0];
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    log(`${req.method} ${pathname} ${res.statusCode} ${ms.toFixed(1)}ms`);
  });
  // The handler of the moment: a rotation swaps it, requests already in flight finish on the
  // provider they started on.
  handler(req, res);
});
server.keepAliveTimeout = 5000;

let rotating = false;
function rotate() {
  if (rotating) {
    log('SIGHUP: a rotation is already under way');
    return;
  }
  rotating = true;
  try {
    const fresh = generateKeys();
    const provider = makeProvider(config, fresh);
    saveKeys(config.keys_file, fresh);
    handler = provider.callback();
    log(`SIGHUP: rotated keys: ${describeKeys(keys)} -> ${describeKeys(fresh)}`);
    keys = fresh;
  } catch (err) {
    log(`SIGHUP: rotation failed, keeping the keys ${describeKeys(keys)}: ${err.stack || err}`);
  } finally {
    rotating = false;
  }
}

function shutdown(signal) {
  log(`${signal}: stopping`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 3000).unref();
}

process.on('SIGHUP', rotate);
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

server.on('error', (err) => fail(`cannot listen on ${config.listen.host}:${config.listen.port}: ${err.message}`));
server.listen(config.listen.port, config.listen.host, () => {
  log(`oidc-provider ${config.issuer} listening on http://${config.listen.host}:${config.listen.port} (node ${process.version}, pid ${process.pid}); clients: ${config.clients.map((c) => `${c.client_id} (${c.signing_alg}, ${c.access_token_ttl}s)`).join(', ')}; resources: ${Object.keys(config.resources).join(', ')}`);
});
