// deploy/nginx-kolabmeet.conf in front of the real server (issue 10, packaging): nginx
// terminates TLS for the API and the signaling WebSocket, the server runs without TLS with
// FORCE_WSS and PUBLIC_DOMAIN naming the proxy, and a real socket.io client follows the
// peer URL through the proxy to roomReady and join. Only the listen address, the
// certificate paths and the upstream port of the file are changed for the test.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { io } = require('socket.io-client');
const { api, createPeer, createRoom, eventually, freePort, request, startServer } = require('./helpers.js');

const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
const CONF = path.resolve(__dirname, '../../../deploy/nginx-kolabmeet.conf');
const missing = !fs.existsSync(NGINX);
// CI installs nginx-light (.ci/run); elsewhere the test says why it did not run.
const skip = missing && !process.env.CI ? `${NGINX} missing (apt-get install nginx-light)` : false;

/** GET over TLS with the test's self-signed certificate accepted. */
function tlsGet(url) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      })
      .on('error', reject);
  });
}

test('the packaged nginx config carries the API and wss signaling to the server', { skip, timeout: 60000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kolabmeet-nginx-'));
  const [tlsPort, upstreamPort] = [await freePort(), await freePort()];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'],
  { stdio: 'ignore' });
  const site = fs
    .readFileSync(CONF, 'utf8')
    .replace(/listen 443 ssl;/, `listen 127.0.0.1:${tlsPort} ssl;`)
    .replace(/^\s*listen \[::\]:443 ssl;$/m, '')
    .replace(/\/etc\/pki\/tls\/certs\/meet\.example\.org\.pem/, path.join(dir, 'cert.pem'))
    .replace(/\/etc\/pki\/tls\/private\/meet\.example\.org\.key/, path.join(dir, 'key.pem'))
    .replace(/127\.0\.0\.1:12443/g, `127.0.0.1:${upstreamPort}`);
  assert.match(site, new RegExp(`127\\.0\\.0\\.1:${upstreamPort}`), 'upstream rewritten');
  fs.writeFileSync(path.join(dir, 'site.conf'), site);
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log info;\nevents {}\n` +
      `http {\n  access_log ${dir}/access.log;\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n` +
      `  include ${dir}/site.conf;\n}\n`,
  );
  const nginx = spawn(NGINX, ['-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let nginxErr = '';
  nginx.stderr.on('data', (d) => (nginxErr += d));
  const front = `https://127.0.0.1:${tlsPort}`;
  const server = await startServer(
    { LISTENING_PORT: String(upstreamPort), PUBLIC_DOMAIN: `127.0.0.1:${tlsPort}`, FORCE_WSS: 'true' },
    { waitReady: false },
  );
  server.base = `http://127.0.0.1:${upstreamPort}`;
  let socket;
  try {
    await eventually(async () => {
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${nginxErr}`);
      try {
        const r = await tlsGet(`${front}/ping`);
        return r.status === 200 && r.body === 'PONG';
      } catch {
        return false;
      }
    }, 15000, '/ping through nginx').catch((e) => {
      throw new Error(`${e.message}; nginx: ${nginxErr} ${fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8').slice(-1500) : ''}`);
    });
    // The API through the proxy (this file's process accepts the self-signed certificate),
    // the token checked by the server.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    const proxiedServer = { ...server, base: front };
    const refused = await api(proxiedServer, 'POST', '/meetmedia/api/sessions', { headers: { 'X-Auth-Token': 'wrong-token' } });
    assert.equal(refused.status, 403);
    const room = await createRoom(proxiedServer);
    const peer = await createPeer(proxiedServer, room, 31);
    // The peer URL names the proxy with wss://, as the browsers need.
    assert.equal(peer.url.protocol, 'wss:');
    assert.equal(peer.url.host, `127.0.0.1:${tlsPort}`);
    socket = io(`https://${peer.url.host}`, {
      path: '/meetmedia/signaling',
      transports: ['websocket'],
      query: peer.query,
      reconnection: false,
      rejectUnauthorized: false,
    });
    const ready = await new Promise((resolve, reject) => {
      socket.on('notification', (n) => n.method === 'roomReady' && resolve(n.data));
      socket.on('connect_error', reject);
      setTimeout(() => reject(new Error('no roomReady through nginx')), 10000);
    });
    assert.equal(ready.roomId, room);
    const { err, res } = await request(socket, 'join', { nickname: 'through the proxy' });
    assert.equal(err ?? null, null);
    assert.equal(res.id, peer.id);
    // The server has no TLS here: this wss socket can only have come through nginx.
  } finally {
    if (socket) socket.close();
    await server.stop();
    nginx.kill('SIGTERM');
    await new Promise((r) => (nginx.exitCode !== null ? r() : nginx.once('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
