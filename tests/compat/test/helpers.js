// Shared helpers of the compatibility suite: start the real binary, call its API, connect
// real socket.io clients, collect webhooks. Everything stays on 127.0.0.1.
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { io } = require('socket.io-client');

const BIN = process.env.KOLABMEET_BIN || path.resolve(__dirname, '../../../target/release/kolabmeet-server');
const CONNECT_BIN = path.join(path.dirname(BIN), 'connect');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `ms` pass. */
async function eventually(fn, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Starts the server with `env` (merged over test defaults). `clean: true` starts it with
 * only the given variables (no defaults); `bin` runs another build of the server.
 * Resolves once /ping answers.
 */
async function startServer(env = {}, { clean = false, waitReady = true, bin = BIN } = {}) {
  const port = await freePort();
  const token = crypto.randomBytes(16).toString('hex');
  const consolePath = path.join(os.tmpdir(), `kolabmeet-compat-${process.pid}-${port}.sock`);
  const base = clean
    ? { LISTENING_PORT: String(port), WEBRTC_PORT: '0' }
    : {
        LISTENING_HOST: '127.0.0.1',
        LISTENING_PORT: String(port),
        AUTH_TOKEN: token,
        PUBLIC_DOMAIN: `127.0.0.1:${port}`,
        WEBRTC_LISTEN_IP: '127.0.0.1',
        WEBRTC_PORT: '0',
        CONSOLE_SOCKET: consolePath,
        LOG_LEVEL: 'debug',
      };
  const fullEnv = { PATH: process.env.PATH, ...base, ...env };
  const proc = spawn(bin, [], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = {
    port,
    token: fullEnv.AUTH_TOKEN,
    base: `http://127.0.0.1:${port}`,
    consolePath: fullEnv.CONSOLE_SOCKET,
    proc,
    stdout: '',
    stderr: '',
    exited: null,
    sockets: [],
  };
  proc.stdout.on('data', (d) => (server.stdout += d));
  proc.stderr.on('data', (d) => (server.stderr += d));
  server.exitPromise = new Promise((resolve) =>
    proc.on('exit', (code, signal) => {
      server.exited = { code, signal };
      resolve(server.exited);
    }),
  );
  server.stop = async () => {
    for (const s of server.sockets) s.close();
    if (!server.exited) {
      // SIGTERM drains (rooms still open go on); a second one stops at once. It is sent
      // once the first was taken (logged at info), as two signals sent together can merge.
      proc.kill('SIGTERM');
      const end = Date.now() + 2000;
      while (!server.exited && !/stop signal: draining/.test(server.stderr) && Date.now() < end) await sleep(10);
      if (!server.exited) proc.kill('SIGTERM');
      await server.exitPromise;
    }
  };
  if (waitReady) {
    const ready = eventually(async () => {
      if (server.exited) throw new Error(`server exited: ${JSON.stringify(server.exited)}\n${server.stderr}`);
      try {
        const r = await fetch(`${server.base}/ping`);
        if ((await r.text()) === 'PONG') return true;
        // The old Kolab meet server (side-by-side measurements, issue 15): its ping is
        // /meetmedia/api/ping, behind the token like every route.
        const o = await fetch(`${server.base}/meetmedia/api/ping`, { headers: { 'X-Auth-Token': server.token } });
        return (await o.text()) === 'PONG';
      } catch {
        return false;
      }
    }, 10000, 'the server to answer /ping');
    try {
      await ready;
    } catch (e) {
      // Not left running behind a failed start.
      if (!server.exited) proc.kill('SIGKILL');
      throw e;
    }
  }
  return server;
}

/** Calls the API with the server's token (unless `headers` overrides it). */
async function api(server, method, p, { body, headers = {}, raw = false } = {}) {
  const h = { 'X-Auth-Token': server.token, ...headers };
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    if (!h['Content-Type']) h['Content-Type'] = 'application/json';
  }
  const r = await fetch(`${server.base}${p}`, { method, headers: h, body: payload });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return raw ? r : { status: r.status, text, json, headers: r.headers };
}

async function createRoom(server) {
  const r = await api(server, 'POST', '/meetmedia/api/sessions');
  if (r.status !== 200) throw new Error(`create room: ${r.status} ${r.text}`);
  return r.json.id;
}

/** Creates a peer; returns {id, token, query} where query is the signaling URL's query. */
async function createPeer(server, room, role) {
  const r = await api(server, 'POST', `/meetmedia/api/sessions/${room}/connection`, {
    body: role === undefined ? {} : { role },
  });
  if (r.status !== 200) throw new Error(`create peer: ${r.status} ${r.text}`);
  const url = new URL(r.json.token);
  return { id: r.json.id, token: r.json.token, url, query: Object.fromEntries(url.searchParams) };
}

/**
 * Connects a real socket.io client like the Kolab client does. Records every
 * notification in `socket.notifications`. Resolves once connected (or rejects on
 * connect_error unless `expectError`).
 */
function connectSocket(server, query, { path: p = '/meetmedia/signaling', expectError = false, opts = {} } = {}) {
  const socket = io(server.base, {
    path: p,
    transports: ['websocket'],
    query,
    reconnection: false,
    forceNew: true,
    timeout: 5000,
    ...opts,
  });
  server.sockets.push(socket);
  socket.notifications = [];
  socket.on('notification', (n) => socket.notifications.push(n));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timeout')), 6000);
    socket.once('connect', () => {
      clearTimeout(t);
      if (expectError) reject(new Error('connected but expected a refusal'));
      else resolve(socket);
    });
    socket.once('connect_error', (err) => {
      clearTimeout(t);
      if (expectError) resolve(err);
      else reject(err);
    });
  });
}

/** Sends a request and resolves with {err, res} (the two ack arguments). */
function request(socket, method, data, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ack for ${method}`)), timeoutMs);
    socket.emit('request', { method, data }, (err, res) => {
      clearTimeout(t);
      resolve({ err, res });
    });
  });
}

/** Waits for a notification `method` (optionally matching `pred`), looking at past ones too. */
async function waitNotification(socket, method, pred = () => true, ms = 5000) {
  return eventually(() => socket.notifications.find((n) => n.method === method && pred(n.data)), ms, `notification ${method}`);
}

/** Creates, connects and joins a peer. */
async function joinedPeer(server, room, role, nickname) {
  const peer = await createPeer(server, room, role);
  const socket = await connectSocket(server, peer.query);
  await waitNotification(socket, 'roomReady');
  const { err, res } = await request(socket, 'join', { nickname });
  if (err) throw new Error(`join failed: ${err} ${res}`);
  return { peer, socket, joinResponse: res };
}

/** A local HTTP server that records webhook POSTs. */
async function webhookReceiver() {
  const hooks = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      let json;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      hooks.push({ headers: req.headers, json, path: req.url });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}/hook`,
    hooks,
    close: () => new Promise((r) => srv.close(r)),
  };
}

module.exports = {
  BIN,
  CONNECT_BIN,
  api,
  connectSocket,
  createPeer,
  createRoom,
  eventually,
  freePort,
  joinedPeer,
  request,
  sleep,
  startServer,
  waitNotification,
  webhookReceiver,
};
