// Configuration (contract section 2: --help, embedded defaults, bad values, TLS) and the
// console (section 7) with the `connect` client.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile, execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { io } = require('socket.io-client');
const { BIN, CONNECT_BIN, api, createPeer, createRoom, eventually, freePort, joinedPeer, startServer, waitNotification } = require('./helpers');

const CONTRACT_VARS = [
  'AUTH_TOKEN', 'TURN_SERVER', 'TURN_STATIC_SECRET', 'WEBHOOK_URL', 'WEBHOOK_TOKEN', 'SSL_CERT', 'SSL_KEY',
  'FORCE_WSS', 'LISTENING_HOST', 'LISTENING_PORT', 'PUBLIC_DOMAIN', 'ROUTER_SCALE_SIZE', 'MEDIASOUP_NUM_WORKERS',
  'WEBRTC_LISTEN_IP', 'WEBRTC_ANNOUNCED_ADDRESS',
];

test('--help lists every variable with its default', () => {
  const r = spawnSync(BIN, ['--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const v of CONTRACT_VARS) assert.match(r.stdout, new RegExp(`\\b${v}\\b`), v);
  assert.match(r.stdout, /LISTENING_PORT .*\[12443\]/);
});

test('bad values stop the server with one line naming the variable', () => {
  const cases = [
    [{ LISTENING_PORT: 'abc' }, 'LISTENING_PORT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ SSL_CERT: '/nonexistent.pem', SSL_KEY: '/nonexistent.key' }, 'SSL_CERT'],
    [{ TURN_SERVER: 'turn:127.0.0.1:3478' }, 'TURN_STATIC_SECRET'],
    [{ FORCE_WSS: 'perhaps' }, 'FORCE_WSS'],
    [{ LISTENING_HOST: 'not-an-ip' }, 'LISTENING_HOST'],
  ];
  for (const [env, name] of cases) {
    const r = spawnSync(BIN, [], { env: { PATH: process.env.PATH, CONSOLE_SOCKET: 'none', ...env }, encoding: 'utf8', timeout: 5000 });
    assert.notEqual(r.status, 0, JSON.stringify(env));
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(name));
    assert.doesNotMatch(r.stderr, /panicked|backtrace/i);
  }
  const unknown = spawnSync(BIN, ['--frobnicate'], { encoding: 'utf8' });
  assert.equal(unknown.status, 2);
});

test('with no configuration it runs on 127.0.0.1 with a generated token', async () => {
  const sock = path.join(os.tmpdir(), `km-defaults-${process.pid}.sock`);
  const server = await startServer({ CONSOLE_SOCKET: sock }, { clean: true });
  const port = server.port;
  try {
    const m = await eventually(() => server.stdout.match(/AUTH_TOKEN=([0-9a-f]{64})/), 3000, 'token line');
    server.token = m[1];
    assert.equal((server.stdout.match(/AUTH_TOKEN=/g) || []).length, 1, 'printed once');
    const r = await api(server, 'POST', '/meetmedia/api/sessions');
    assert.equal(r.status, 200);
    const peer = await createPeer(server, r.json.id, 3);
    assert.equal(peer.url.protocol, 'ws:');
    assert.equal(peer.url.host, `127.0.0.1:${port}`);
    server.token = 'wrong';
    assert.equal((await api(server, 'GET', '/meetmedia/api/sessions')).status, 403);
  } finally {
    await server.stop();
  }
});

test('FORCE_WSS hands out wss:// URLs', async () => {
  const server = await startServer({ FORCE_WSS: 'true' });
  try {
    const room = await createRoom(server);
    const peer = await createPeer(server, room, 3);
    assert.equal(peer.url.protocol, 'wss:');
  } finally {
    await server.stop();
  }
});

test('TLS: HTTPS API and WSS signaling with SSL_CERT/SSL_KEY', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'km-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const port = await freePort();
  const server = await startServer({ SSL_CERT: cert, SSL_KEY: key, LISTENING_PORT: String(port), PUBLIC_DOMAIN: `127.0.0.1:${port}` }, { waitReady: false });
  const ca = fs.readFileSync(cert);
  const get = (p, headers = {}) => new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, method: p.endsWith('sessions') ? 'POST' : 'GET', ca, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
  try {
    await eventually(async () => {
      try {
        return (await get('/ping')).body === 'PONG';
      } catch {
        return false;
      }
    }, 10000, 'https /ping');
    const r = await get('/meetmedia/api/sessions', { 'X-Auth-Token': server.token });
    assert.equal(r.status, 200);
    assert.ok(r.headers['strict-transport-security']);
    const room = JSON.parse(r.body).id;
    const peerRes = await new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: `/meetmedia/api/sessions/${room}/connection`, method: 'POST', ca,
        headers: { 'X-Auth-Token': server.token, 'Content-Type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(JSON.parse(body)));
      });
      req.on('error', reject);
      req.end('{"role":3}');
    });
    const url = new URL(peerRes.token);
    assert.equal(url.protocol, 'wss:');
    const socket = io(`https://127.0.0.1:${port}`, {
      path: '/meetmedia/signaling', transports: ['websocket'], query: Object.fromEntries(url.searchParams),
      reconnection: false, forceNew: true, ca, rejectUnauthorized: true,
    });
    socket.notifications = [];
    socket.on('notification', (n) => socket.notifications.push(n));
    await waitNotification(socket, 'roomReady', () => true, 5000);
    socket.close();
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function consoleSession(server, lines) {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.consolePath);
    let out = '';
    let sent = 0;
    s.on('data', (d) => {
      out += d;
      const prompts = out.split('cmd> ').length - 1;
      if (prompts > sent) {
        if (sent < lines.length) s.write(lines[sent] + '\n');
        else s.end();
        sent++;
      }
    });
    s.on('close', () => resolve(out));
    s.on('error', reject);
    setTimeout(() => s.destroy(), 5000);
  });
}

test('console: prompt, help, stats, dumps, logLevel', async () => {
  const server = await startServer();
  try {
    const room = await createRoom(server);
    const a = await joinedPeer(server, room, 3, 'Ann');
    const out = await consoleSession(server, ['help', 'stats', 'dumpRooms', 'dumpPeers', `statsRoom ${room}`, 'usage', 'logLevel warn', 'logLevel loud', 'logTags ice,dtls', 'bogus']);
    assert.ok(out.startsWith('cmd> '));
    for (const cmd of ['usage', 'stats', 'dumpRooms', 'dumpPeers', 'dumpWorkers', 'dumpRouter', 'dumpTransport', 'dumpProducer', 'dumpConsumer', 'statsRoom', 'statsTransport', 'statsProducer', 'statsConsumer', 'logLevel', 'logTags']) {
      assert.match(out, new RegExp(`\\b${cmd}\\b`), cmd);
    }
    assert.match(out, /rooms:1\npeers:1/);
    assert.match(out, new RegExp(`room ${room}`));
    assert.match(out, new RegExp(`peer ${a.peer.id}`));
    assert.match(out, /"nickname": "Ann"/);
    assert.match(out, /memory: rss \d+ kB/);
    assert.match(out, /logLevel: warn/);
    assert.match(out, /error: unknown level/);
    assert.match(out, /logTags: ice,dtls/);
    assert.match(out, /unknown command "bogus"/);
    // connect --stats prints the stats answer and exits.
    const stats = await new Promise((resolve, reject) =>
      execFile(CONNECT_BIN, ['--stats'], { env: { ...process.env, CONSOLE_SOCKET: server.consolePath }, timeout: 5000 }, (err, stdout) =>
        err ? reject(err) : resolve(stdout)),
    );
    assert.equal(stats.trim(), 'rooms:1\npeers:1');
    a.socket.close();
  } finally {
    await server.stop();
  }
});

test('connect without a server says so', () => {
  const r = spawnSync(CONNECT_BIN, ['--stats', '--socket', '/nonexistent/kolabmeet.sock'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /cannot open the console/);
});
